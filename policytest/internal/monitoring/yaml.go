package monitoring

import "sigs.k8s.io/yaml"

func yamlMarshal(v any) ([]byte, error) { return yaml.Marshal(v) }

// yamlUnmarshalStrict refuses fields the target type does not know, so a misspelt key in a rule,
// a route or a test file is an error rather than a silently ignored value.
func yamlUnmarshalStrict(b []byte, v any) error { return yaml.UnmarshalStrict(b, v) }

// yamlUnmarshalLoose reads only the fields the target type has.
func yamlUnmarshalLoose(b []byte, v any) error { return yaml.Unmarshal(b, v) }
