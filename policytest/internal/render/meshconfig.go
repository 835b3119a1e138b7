package render

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	meshconfig "istio.io/api/mesh/v1alpha1"
)

// typedValues are values a chart hands on whole as text (istiod writes meshConfig into the
// `istio` ConfigMap's `mesh` key), so neither the chart's known keys nor the schema stage look
// inside them, and istiod ignores a field it does not know: `outboundTrafficPolicy.modee` would
// silently leave the mesh at ALLOW_ANY. They are checked against the API they are, at the
// version of the chart (istio.io/api v1.30.3 for the istiod 1.30.3 chart; bumped together:
// renovate.json groups them).
var typedValues = map[string]map[string]proto.Message{
	"istiod": {"meshConfig": &meshconfig.MeshConfig{}},
}

// TypedValueProblems checks the typed values of chart in values (one values file, decoded):
// each problem is "<key.path>: <what is wrong>" — a key that is no field of the message (by its
// JSON or proto name), or a value of the wrong type or an unknown enum name (protojson's
// message). Sorted; nil when the chart has no typed values.
func TypedValueProblems(chart string, values map[string]any) []string {
	var out []string
	for key, msg := range typedValues[chart] {
		v, ok := values[key]
		if !ok {
			continue
		}
		md := msg.ProtoReflect().Descriptor()
		unknown := unknownFields(md, v, key)
		for _, p := range unknown {
			out = append(out, fmt.Sprintf("%s: not a field of %s", p, md.FullName()))
		}
		if len(unknown) > 0 {
			continue // protojson would only say the same about the first of them
		}
		data, err := json.Marshal(v)
		if err == nil {
			err = protojson.Unmarshal(data, msg.ProtoReflect().New().Interface())
		}
		if err != nil {
			out = append(out, fmt.Sprintf("%s: not a valid %s: %v", key, md.FullName(), err))
		}
	}
	sort.Strings(out)
	return out
}

// unknownFields lists the key paths below v (decoded YAML) that are no field of md, descending
// into message fields, maps of messages and lists of messages; the well-known types
// (google.protobuf.Duration, Struct, wrappers) are left to protojson.
func unknownFields(md protoreflect.MessageDescriptor, v any, at string) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	for k, val := range m {
		p := at + "." + k
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByName(protoreflect.Name(k))
		}
		if fd == nil {
			out = append(out, p)
			continue
		}
		switch {
		case fd.IsMap():
			if sub := fd.MapValue().Message(); sub != nil && !wellKnown(sub) {
				entries, _ := val.(map[string]any)
				for mk, mv := range entries {
					out = append(out, unknownFields(sub, mv, p+"."+mk)...)
				}
			}
		case fd.Message() == nil || wellKnown(fd.Message()):
		case fd.IsList():
			items, _ := val.([]any)
			for i, item := range items {
				out = append(out, unknownFields(fd.Message(), item, fmt.Sprintf("%s[%d]", p, i))...)
			}
		default:
			out = append(out, unknownFields(fd.Message(), val, p)...)
		}
	}
	return out
}

func wellKnown(md protoreflect.MessageDescriptor) bool {
	return strings.HasPrefix(string(md.FullName()), "google.protobuf.")
}
