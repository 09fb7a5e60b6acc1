package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kk-project/kk/pipeline"
)

// Task names of a member's removal (kk delete node).
const (
	TaskQuorum       = "etcd/quorum"
	TaskMemberRemove = "etcd/member-remove"
)

// listMembers lists the cluster's members through the members of s.
func (s Spec) listMembers(ctx context.Context, t *pipeline.Target) (*memberList, error) {
	out, err := t.Sudo(ctx, etcdctlCmd(s.endpoints(), "member", "list", "-w", "json"))
	if err != nil {
		return nil, fmt.Errorf("etcdctl member list: %w", err)
	}
	var ml memberList
	if err := json.Unmarshal([]byte(out), &ml); err != nil {
		return nil, fmt.Errorf("read etcdctl member list output: %w", err)
	}
	return &ml, nil
}

// firstMember selects s's first member (none when s has no member).
func (s Spec) firstMember() pipeline.Selector {
	if len(s.Members) == 0 {
		return pipeline.Named()
	}
	return pipeline.Named(s.Members[0].Name)
}

// QuorumTask refuses, before anything changes, to remove member name when the members that
// stay (s's) could not keep a quorum without it: each of them must be healthy enough that a
// majority of them answers. s is the etcd cluster without name; it runs on its first member.
func QuorumTask(s Spec, name string) pipeline.Task {
	return pipeline.Task{
		Name: TaskQuorum, Desc: "the etcd members that stay hold a quorum without " + name,
		Hosts: s.firstMember(), Gate: true, ReadOnly: true,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if len(s.Members) == 0 {
				return false, fmt.Errorf("%s is the last etcd member: removing it would end the cluster's data", name)
			}
			bad, err := s.probe(ctx, t)
			if err != nil {
				return false, err
			}
			// bad lists every member of s that is unhealthy or missing
			if healthy, need := len(s.Members)-len(bad), len(s.Members)/2+1; healthy < need {
				return false, fmt.Errorf("removing %s would leave %d healthy etcd members of %d, below a quorum of %d: %v", name, healthy, len(s.Members), need, bad)
			}
			return false, nil
		},
	}
}

// RemoveMemberTask removes member name from the etcd cluster (s: the members that stay),
// through its first member. A cluster without the member is left alone.
func RemoveMemberTask(s Spec, name string, after []string) pipeline.Task {
	find := func(ctx context.Context, t *pipeline.Target) (uint64, bool, error) {
		ml, err := s.listMembers(ctx, t)
		if err != nil {
			return 0, false, err
		}
		for _, m := range ml.Members {
			if m.Name == name {
				return m.ID, true, nil
			}
		}
		return 0, false, nil
	}
	return pipeline.Task{
		Name: TaskMemberRemove, Desc: "etcdctl member remove " + name,
		Hosts: s.firstMember(), After: after, Barrier: true,
		Timeout: HealthTimeout + time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			_, found, err := find(ctx, t)
			return !found, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			id, found, err := find(ctx, t)
			if err != nil || !found {
				return false, err
			}
			if _, err := t.Sudo(ctx, etcdctlCmd(s.endpoints(), "member", "remove", strconv.FormatUint(id, 16))); err != nil {
				return false, fmt.Errorf("remove etcd member %s: %w", name, err)
			}
			// the members that stay are healthy without it
			var bad []string
			ok, err := poll(ctx, HealthTimeout, 2*time.Second, func() (bool, error) {
				bad, err = s.probe(ctx, t)
				return err == nil && len(bad) == 0, err
			})
			if err == nil && !ok {
				err = fmt.Errorf("etcd members not healthy %s after removing %s: %s", HealthTimeout, name, strings.Join(bad, "; "))
			}
			return true, err
		},
	}
}
