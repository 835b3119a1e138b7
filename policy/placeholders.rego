# A base may leave a value for the environment to fill in, spelled <WHAT>-SET-BY-<WHO>
# (STORAGE-CLASS-SET-BY-CLUSTER, REGION-SET-BY-CLUSTER, ...). None may survive the render: an
# environment that forgot its patch would otherwise apply a nonsense value.
package cloudlab.placeholders

import data.lib

deny contains lib.finding(item, msg) if {
	some item in input.objects
	walk(item.obj, [path, value])
	is_string(value)
	regex.match(`[A-Z]+(-[A-Z]+)*-SET-BY-[A-Z]+`, value)
	msg := sprintf("%s is still the placeholder %q: set it in clusters/<env>/", [concat(".", [format_segment(s) | some s in path]), value])
}

format_segment(s) := sprintf("%v", [s])
