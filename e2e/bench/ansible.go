package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/kk-project/kk/e2e/bench/internal/play"
	"github.com/kk-project/kk/templates"
)

// The ansible side of the benchmark: the same play, written into a temp dir at run time.
// Tuned the way a careful Ansible user would (fair to Ansible): forks = N, pipelining on,
// no fact gathering, the Python interpreter given (no discovery round trip), SSH
// ControlMaster on. Each invocation gets a fresh ControlPath dir, so every run starts cold
// like kk's (no master connection left over from the previous run).

const playbook = `# kk fan-out benchmark: the same 3-task play kkplay runs.
- name: kk bench play
  hosts: all
  gather_facts: false
  tasks:
    - name: upload blob
      ansible.builtin.copy:
        src: "{{ kkbench_blob }}"
        dest: "{{ kkbench_root }}/{{ inventory_hostname }}/blob"
        mode: "0644"
    - name: render unit
      ansible.builtin.template:
        src: "{{ kkbench_unit_template }}"
        dest: "{{ kkbench_root }}/{{ inventory_hostname }}/kkbench.service"
        mode: "0644"
    - name: checksum blob
      ansible.builtin.command: sha256sum -- {{ kkbench_root }}/{{ inventory_hostname }}/blob
      register: kkbench_sum
      changed_when: false
      failed_when: kkbench_sum.rc != 0 or kkbench_sum.stdout.split()[0] != kkbench_blob_sha256
`

const ansibleCfg = `[defaults]
host_key_checking = True
retry_files_enabled = False
gathering = explicit
interpreter_python = /usr/bin/python3
nocolor = True
deprecation_warnings = False
forks = %d
local_tmp = %s

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s
`

// jinjaVars maps each field of the kk unit template to its Jinja2 expression. The Jinja2
// twin is derived from kk's template text, so the two cannot drift apart; the bench also
// checks that both tools leave byte-identical files.
var jinjaVars = [][2]string{
	{"{{ .Host }}", "{{ inventory_hostname }}"},
	{"{{ .Address }}", "{{ ansible_host }}"},
	{"{{ .Dir }}", "{{ kkbench_root }}/{{ inventory_hostname }}"},
	{"{{ .MemoryMax }}", "{{ kkbench_memory_max }}"},
	{"{{ .Nice }}", "{{ kkbench_nice }}"},
}

func jinjaUnit() ([]byte, error) {
	src, err := fs.ReadFile(templates.FS(), play.UnitTemplate)
	if err != nil {
		return nil, fmt.Errorf("read kk template %s: %w", play.UnitTemplate, err)
	}
	s := string(src)
	for _, kv := range jinjaVars {
		s = strings.ReplaceAll(s, kv[0], kv[1])
	}
	if strings.Contains(s, "{{ .") || strings.Contains(s, "{{-") {
		return nil, fmt.Errorf("kk template %s uses a field or action the Jinja2 translation does not know", play.UnitTemplate)
	}
	return []byte(s), nil
}

// ansibleSetup is a written playbook, inventory and config for one host set.
type ansibleSetup struct {
	dir       string
	playbook  string
	inventory string
	config    string
}

// writeAnsible writes the play for the bed's hosts into dir.
func writeAnsible(dir string, hosts []benchHost, b *bed, root, blobPath string, forks int) (*ansibleSetup, error) {
	if err := os.MkdirAll(filepath.Join(dir, "local-tmp"), 0o700); err != nil {
		return nil, err
	}
	a := &ansibleSetup{
		dir:       dir,
		playbook:  filepath.Join(dir, "play.yml"),
		inventory: filepath.Join(dir, "inventory.yml"),
		config:    filepath.Join(dir, "ansible.cfg"),
	}
	unit, err := jinjaUnit()
	if err != nil {
		return nil, err
	}
	unitPath := filepath.Join(dir, "kkbench.service.j2")
	type hostVars struct {
		AnsibleHost string `json:"ansible_host"`
		AnsiblePort int    `json:"ansible_port,omitempty"`
	}
	inv := map[string]any{"all": map[string]any{
		"hosts": func() map[string]hostVars {
			m := map[string]hostVars{}
			for _, h := range hosts {
				m[h.Name] = hostVars{AnsibleHost: h.Address, AnsiblePort: h.Port}
			}
			return m
		}(),
		"vars": map[string]any{
			"ansible_user":                 "root",
			"ansible_ssh_private_key_file": b.keyPath,
			"ansible_ssh_common_args": "-o UserKnownHostsFile=" + b.knownHosts +
				" -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes",
			"ansible_python_interpreter": "/usr/bin/python3",
			"kkbench_root":               root,
			"kkbench_blob":               blobPath,
			"kkbench_blob_sha256":        play.BlobSHA256(),
			"kkbench_unit_template":      unitPath,
			"kkbench_memory_max":         play.MemoryMax,
			"kkbench_nice":               play.Nice,
		},
	}}
	invJSON, err := json.MarshalIndent(inv, "", "  ") // JSON is YAML: the yaml inventory plugin reads it
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{
		{a.playbook, []byte(playbook)},
		{a.inventory, invJSON},
		{a.config, fmt.Appendf(nil, ansibleCfg, forks, filepath.Join(dir, "local-tmp"))},
		{unitPath, unit},
	} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return nil, fmt.Errorf("write ansible files: %w", err)
		}
	}
	return a, nil
}

// command returns the ansible-playbook invocation; controlDir holds this run's SSH masters.
func (a *ansibleSetup) command(ctx context.Context, controlDir string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", a.inventory, a.playbook)
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(),
		"ANSIBLE_CONFIG="+a.config,
		"ANSIBLE_SSH_CONTROL_PATH_DIR="+controlDir,
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_STDOUT_CALLBACK=default",
	)
	return cmd
}

// stopMasters closes the SSH master connections a run left in controlDir (not timed).
func stopMasters(ctx context.Context, controlDir string) {
	entries, err := os.ReadDir(controlDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSocket == 0 {
			continue
		}
		_ = exec.CommandContext(ctx, "ssh", "-o", "ControlPath="+filepath.Join(controlDir, e.Name()), "-O", "exit", "kkbench").Run()
	}
}

// recapLine is one host's line of the PLAY RECAP.
var recapLine = regexp.MustCompile(`^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// recap holds the counts of one host in the PLAY RECAP.
type recap struct{ ok, changed, unreachable, failed int }

// parseRecap reads the PLAY RECAP of ansible-playbook's output.
func parseRecap(out string) (map[string]recap, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	in := false
	res := map[string]recap{}
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "PLAY RECAP") {
			in = true
			continue
		}
		if !in {
			continue
		}
		m := recapLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		res[m[1]] = recap{ok: n(2), changed: n(3), unreachable: n(4), failed: n(5)}
	}
	if !in {
		return nil, fmt.Errorf("no PLAY RECAP in ansible-playbook output")
	}
	return res, nil
}

// checkRecap verifies every host ran the 3 tasks, none failed or was unreachable, and
// every host changed wantChanged tasks. It returns the total of changed tasks.
func checkRecap(out string, hosts []benchHost, wantChanged int) (int, error) {
	rc, err := parseRecap(out)
	if err != nil {
		return 0, err
	}
	var bad []string
	total := 0
	for _, h := range hosts {
		r, ok := rc[h.Name]
		total += r.changed
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("host %s: missing from PLAY RECAP", h.Name))
		case r.failed != 0 || r.unreachable != 0:
			bad = append(bad, fmt.Sprintf("host %s: failed=%d unreachable=%d", h.Name, r.failed, r.unreachable))
		case r.ok != 3 || r.changed != wantChanged:
			bad = append(bad, fmt.Sprintf("host %s: ok=%d changed=%d, want ok=3 changed=%d", h.Name, r.ok, r.changed, wantChanged))
		}
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("… and %d more", len(bad)-5))
		}
		return total, fmt.Errorf("ansible PLAY RECAP: %s", strings.Join(bad, "; "))
	}
	return total, nil
}
