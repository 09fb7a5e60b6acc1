package v1alpha2

import (
	"reflect"
	"testing"
)

func TestExpandRange(t *testing.T) {
	ok := map[string][]string{
		"node1":         {"node1"},
		"node[1:3]":     {"node1", "node2", "node3"},
		"node[01:03]":   {"node01", "node02", "node03"},
		"node[9:11]":    {"node9", "node10", "node11"},
		"node[2:2]":     {"node2"},
		"[1:2].example": {"1.example", "2.example"},
		"gpu-[08:10]-a": {"gpu-08-a", "gpu-09-a", "gpu-10-a"},
	}
	for in, want := range ok {
		got, err := ExpandRange(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ExpandRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"node[3:1]", "node[1:x]", "node[1-3]", "node[1:3", "node1:3]", "n[1:2][3:4]", "node[:3]", "node[1:99999]", "node[]"} {
		if got, err := ExpandRange(bad); err == nil {
			t.Errorf("ExpandRange(%q) = %v, want an error", bad, got)
		}
	}
}
