package kubernetes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/retry"
)

// runState is what the tasks of one run share: the join credentials made on the first
// control plane for the nodes that join, and a lock that makes control planes join one at a
// time (each adds a stacked etcd member). It lives in the closures of one Tasks call.
type runState struct {
	mu     sync.Mutex
	creds  JoinCredentials
	have   bool
	cpJoin sync.Mutex
}

func (st *runState) set(c JoinCredentials) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.creds, st.have = c, true
}

func (st *runState) get() (JoinCredentials, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.creds, st.have
}

// Kubectl is kubectl on a control plane as the cluster admin.
const Kubectl = BinDir + "/kubectl --kubeconfig=" + AdminConf + " --request-timeout=20s"

// Tasks returns the tasks that build the cluster with kubeadm. They run after facts and, on
// each node, after s.NodeAfter (the container runtime); kubeadm init also waits for
// s.InitAfter everywhere.
func Tasks(s Spec) []pipeline.Task {
	st := &runState{}
	nodes := pipeline.Role(string(config.RoleControlPlane), string(config.RoleWorker))
	first := pipeline.Named(s.FirstControlPlane)
	var otherCPs, workersOnly []string
	for _, n := range s.Joiners() {
		if n.ControlPlane {
			otherCPs = append(otherCPs, n.Name)
		} else {
			workersOnly = append(workersOnly, n.Name)
		}
	}
	nodeAfter := append([]string{facts.TaskName, TaskInstall, TaskKubeletService}, s.NodeAfter...)
	return []pipeline.Task{
		binaries.Task(TaskInstall, "kubeadm, kubelet and kubectl in "+BinDir, nodes, []string{facts.TaskName}, s.Files, binaries.To(BinDir, Programs...)),
		kubeletServiceTask(s, nodes),
		kubeadmConfigTask(s),
		initTask(s, first, append(append(slices.Clone(nodeAfter), TaskKubeadmConfig), s.InitAfter...)),
		joinCredentialsTask(s, st, first),
		etcdConfigMapTask(s, first),
		joinTask(s, st, TaskJoinControlPlane, "join the other control planes (one at a time)", pipeline.Named(otherCPs...),
			append(slices.Clone(nodeAfter), TaskJoinCredentials, TaskEtcdConfigMap)),
		joinTask(s, st, TaskJoinWorker, "join the workers", pipeline.Named(workersOnly...),
			append(slices.Clone(nodeAfter), TaskJoinCredentials)),
		kubeconfigTask(s),
		nodeRolesTask(s, first),
	}
}

// fileIs is a shell test that path holds exactly content with mode (octal digits).
func fileIs(path string, content []byte, mode string) string {
	m, _ := strconv.ParseUint(mode, 8, 32)
	return connector.FileTest(connector.File{Path: path, Data: content, Mode: fs.FileMode(m)})
}

// hasIPVS is a shell test that the kernel has IPVS (loaded, built in, or loadable).
const hasIPVS = `{ [ -e /proc/net/ip_vs ] || { modprobe ip_vs >/dev/null 2>&1 && [ -e /proc/net/ip_vs ]; }; }`

func kubeletServiceTask(s Spec, sel pipeline.Selector) pipeline.Task {
	render := func() (unit, dropIn []byte, err error) {
		if unit, err = RenderKubeletUnit(); err != nil {
			return nil, nil, err
		}
		dropIn, err = RenderKubeletDropIn()
		return unit, dropIn, err
	}
	ipvs := func(ctx context.Context, t *pipeline.Target) error {
		if s.ProxyMode != "ipvs" || s.DisableKubeProxy {
			return nil
		}
		ok, err := t.Test(ctx, hasIPVS)
		if err == nil && !ok {
			err = fmt.Errorf("kube-proxy mode ipvs needs IPVS in the kernel and this host has none (container %q): set kubernetes.proxyMode to iptables", EnvOf(t.Facts()).Container)
		}
		return err
	}
	return pipeline.Task{
		Name: TaskKubeletService, Desc: "kubelet.service with kubeadm's drop-in, enabled (it restarts until kubeadm configures it)",
		Hosts: sel, After: []string{TaskInstall},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if err := ipvs(ctx, t); err != nil {
				return false, err
			}
			unit, dropIn, err := render()
			if err != nil {
				return false, err
			}
			return t.Test(ctx, fileIs(KubeletUnit, unit, "644")+" && "+fileIs(KubeletDropIn, dropIn, "644")+" && systemctl is-enabled -q kubelet")
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if err := ipvs(ctx, t); err != nil {
				return false, err
			}
			unit, dropIn, err := render()
			if err != nil {
				return false, err
			}
			c1, err := t.Upload(ctx, connector.File{Path: KubeletUnit, Data: unit, Mode: 0o644})
			if err != nil {
				return false, err
			}
			if _, err := t.Sudo(ctx, "mkdir -p "+filepath.Dir(KubeletDropIn)); err != nil {
				return c1, err
			}
			c2, err := t.Upload(ctx, connector.File{Path: KubeletDropIn, Data: dropIn, Mode: 0o644})
			if err != nil {
				return c1, err
			}
			cmd := "systemctl daemon-reload && systemctl enable kubelet 2>&1"
			if c1 || c2 {
				// a running kubelet picks up a changed unit only on restart
				cmd += " && if systemctl is-active -q kubelet; then systemctl restart kubelet; fi"
			}
			if _, err := t.Sudo(ctx, cmd); err != nil {
				return true, err
			}
			return true, nil
		},
	}
}

func kubeadmConfigTask(s Spec) pipeline.Task {
	render := func(t *pipeline.Target) ([]byte, error) {
		return RenderKubeadmConfig(s, t.Name, EnvOf(t.Facts()), "")
	}
	desc := "kubeadm configuration (" + strings.TrimPrefix(KubeadmAPI(s.Version), "kubeadm.k8s.io/") + ") in " + KubeadmConfig
	if s.Audit {
		desc += ", audit policy in " + AuditPolicy
	}
	return pipeline.Task{
		Name: TaskKubeadmConfig, Desc: desc,
		Hosts: pipeline.Role(string(config.RoleControlPlane)), After: []string{facts.TaskName},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			data, err := render(t)
			if err != nil {
				return false, err
			}
			test := fileIs(KubeadmConfig, data, "600")
			if s.Audit {
				policy, err := RenderAuditPolicy()
				if err != nil {
					return false, err
				}
				test += " && " + fileIs(AuditPolicy, policy, "600")
			}
			return t.Test(ctx, test)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			data, err := render(t)
			if err != nil {
				return false, err
			}
			if _, err := t.Sudo(ctx, "mkdir -p /etc/kubernetes"); err != nil {
				return false, err
			}
			if ign := PreflightIgnores(s, EnvOf(t.Facts())); len(ign) > 0 && t.Log != nil {
				t.Log.Info("cgroup v1 host: kubelet failCgroupV1: false, kubeadm preflight ignores "+strings.Join(ign, ","), "kubernetes", s.Version)
			}
			changed, err := t.Upload(ctx, connector.File{Path: KubeadmConfig, Data: data, Mode: 0o600})
			if err != nil || !s.Audit {
				return changed, err
			}
			policy, err := RenderAuditPolicy()
			if err != nil {
				return false, err
			}
			if _, err := t.Sudo(ctx, "mkdir -p "+filepath.Dir(AuditPolicy)+" "+AuditLogDir); err != nil {
				return false, err
			}
			pc, err := t.Upload(ctx, connector.File{Path: AuditPolicy, Data: policy, Mode: 0o600})
			return changed || pc, err
		},
	}
}

// apiReady is a shell test that this control plane's admin kubeconfig reaches a ready API.
// noAPIYet is true on a dry run of a cluster whose API does not answer yet (before kubeadm
// init): there is nothing to ask, and the task would change.
func noAPIYet(ctx context.Context, t *pipeline.Target) (bool, error) {
	if !t.DryRun {
		return false, nil
	}
	ok, err := t.Test(ctx, apiReady)
	return !ok, err
}

const apiReady = `[ -f ` + AdminConf + ` ] && ` + Kubectl + ` get --raw /readyz >/dev/null 2>&1`

// LocalAPIReady is a shell test, on a control plane, that its own kube-apiserver (on port)
// answers /readyz. A kube-apiserver that has just started serves before its caches are
// synced, and until then refuses with 403 what RBAC allows: wait for this after restarting one.
func LocalAPIReady(port int) string {
	return Kubectl + " --server https://127.0.0.1:" + strconv.Itoa(port) + " get --raw /readyz >/dev/null 2>&1"
}

// leftovers is a shell test for what a failed or undone kubeadm run leaves behind.
const leftovers = `{ [ -e /etc/kubernetes/manifests/kube-apiserver.yaml ] || [ -e /etc/kubernetes/pki/ca.crt ] || ` +
	`[ -e ` + KubeletConf + ` ] || [ -e /etc/kubernetes/bootstrap-kubelet.conf ] || [ -e /var/lib/kubelet/config.yaml ]; }`

func resetLeftovers(ctx context.Context, t *pipeline.Target, s Spec) error {
	_, err := t.Sudo(ctx, "rm -f "+initDone+"; if "+leftovers+"; then "+BinDir+"/kubeadm reset -f --cri-socket "+connector.Quote(s.CRISocket)+" >/dev/null; fi")
	if err != nil {
		return fmt.Errorf("clean up what an earlier kubeadm run left: %w", err)
	}
	return nil
}

// KubeadmError wraps a failed kubeadm command with the tail of its output.
func KubeadmError(what string, err error) error {
	ce, ok := pipeline.CommandError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s failed (exit %d):\n%s", what, ce.ExitCode, tail(strings.TrimSpace(ce.Stdout+"\n"+ce.Stderr), 40))
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// initDone marks a first control plane whose kubeadm init ran to its end. A ready API server
// alone does not prove that: kubeadm's last phases (the kubeadm:cluster-admins binding that
// admin.conf's user needs, the kubeadm-config ConfigMap, the bootstrap token RBAC, CoreDNS and
// kube-proxy) run after the API server is up.
const initDone = "/etc/kubernetes/kk-init.done"

// initialised is a shell test for a finished kubeadm init whose result is still there (kubeadm
// reset removes admin.conf, not kk's mark).
const initialised = "[ -f " + initDone + " ] && [ -f " + AdminConf + " ]"

// stopStrayKubeadm ends a kubeadm left running by an interrupted run (a closed SSH session does
// not stop it), so that it cannot race the run that takes over.
const stopStrayKubeadm = `if pgrep -x kubeadm >/dev/null; then pkill -TERM -x kubeadm; ` +
	`for i in $(seq 50); do pgrep -x kubeadm >/dev/null || break; sleep 0.2; done; pkill -KILL -x kubeadm; sleep 0.5; fi; true`

func initTask(s Spec, sel pipeline.Selector, after []string) pipeline.Task {
	initCmd := BinDir + "/kubeadm init --config " + KubeadmConfig + " --upload-certs --skip-token-print --skip-certificate-key-print"
	return pipeline.Task{
		Name: TaskInit, Desc: "kubeadm init on the first control plane", Hosts: sel, After: after, Barrier: true,
		Timeout: 10 * time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, initialised+" && "+apiReady)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if _, err := t.Sudo(ctx, stopStrayKubeadm); err != nil {
				return false, fmt.Errorf("stop a kubeadm left running by an earlier run: %w", err)
			}
			if ok, err := t.Test(ctx, initialised); err != nil {
				return false, err
			} else if ok {
				// initialised already: the API may be starting (after a reboot); wait for it
				_, err := t.Sudo(ctx, "for i in $(seq 60); do "+apiReady+" && exit 0; sleep 2; done; "+
					Kubectl+" get --raw /readyz >&2; exit 1")
				if err != nil {
					return false, fmt.Errorf("the cluster was initialised here (%s exists) but its API server is not ready: %w", initDone, err)
				}
				return false, nil
			}
			partial, err := t.Test(ctx, "[ -f "+AdminConf+" ] && [ -f /etc/kubernetes/pki/ca.key ]")
			if err != nil {
				return false, err
			}
			if !partial {
				if err := resetLeftovers(ctx, t, s); err != nil {
					return false, err
				}
			}
			if s.BeforeInit != nil {
				if err := s.BeforeInit(ctx, t); err != nil {
					return false, fmt.Errorf("before kubeadm init: %w", err)
				}
			}
			cmd := initCmd
			if partial {
				// an earlier kubeadm init was stopped after it wrote the certificates and
				// kubeconfigs: run its phases again over them (each keeps what is valid) rather
				// than reset, which would replace the CA that the cluster's data already trusts
				cmd += " --skip-phases=preflight"
			}
			// --skip-token-print and --skip-certificate-key-print keep credentials out of the logs;
			// kubernetes/join-credentials makes fresh ones when nodes join.
			if _, err := t.Sudo(ctx, cmd); err != nil {
				return true, KubeadmError("kubeadm init", err)
			}
			if _, err := t.Sudo(ctx, "touch "+initDone); err != nil {
				return true, fmt.Errorf("mark kubeadm init done: %w", err)
			}
			return true, nil
		},
	}
}

// registeredNodes lists the nodes the API server knows, from the first control plane; a
// non-empty selector keeps those whose labels match it.
func registeredNodes(ctx context.Context, t *pipeline.Target, selector string) ([]string, error) {
	cmd := Kubectl + " get nodes -o jsonpath='{.items[*].metadata.name}'"
	if selector != "" {
		cmd += " -l " + connector.Quote(selector)
	}
	out, err := t.Sudo(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return strings.Fields(out), nil
}

// controlPlaneLabel is the label kubeadm's mark-control-plane phase gives a control plane: the
// last step of its join, so a control plane without it has not finished joining.
const controlPlaneLabel = "node-role.kubernetes.io/control-plane"

func joinCredentialsTask(s Spec, st *runState, sel pipeline.Selector) pipeline.Task {
	joiners := s.Joiners()
	needCertKey := slices.ContainsFunc(joiners, func(n Node) bool { return n.ControlPlane })
	return pipeline.Task{
		Name: TaskJoinCredentials, Desc: "a fresh bootstrap token and certificate key when nodes still have to join",
		Hosts: sel, After: []string{TaskInit},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if len(joiners) == 0 {
				return true, nil
			}
			if none, err := noAPIYet(ctx, t); err != nil || none {
				return false, err
			}
			reg, err := registeredNodes(ctx, t, "")
			if err != nil {
				return false, err
			}
			var cps []string
			if needCertKey {
				if cps, err = registeredNodes(ctx, t, controlPlaneLabel); err != nil {
					return false, err
				}
			}
			for _, n := range joiners {
				if !slices.Contains(reg, n.Name) || n.ControlPlane && !slices.Contains(cps, n.Name) {
					return false, nil
				}
			}
			return true, nil
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			var c JoinCredentials
			ca, err := t.Fetch(ctx, "/etc/kubernetes/pki/ca.crt")
			if err != nil {
				return false, fmt.Errorf("read the cluster CA: %w", err)
			}
			if c.CACertHash, err = CACertHash(ca); err != nil {
				return false, err
			}
			id, secret := randomString(6), randomString(16)
			c.Token = id + "." + secret
			secretYAML := bootstrapTokenSecret(id, secret, time.Now().Add(2*time.Hour))
			// the token goes on stdin, never on a command line
			res, err := t.Exec(ctx, Kubectl+" create -f -", connector.ExecOptions{Sudo: true, Stdin: secretYAML})
			if err == nil {
				err = res.Err()
			}
			if err != nil {
				return false, fmt.Errorf("create the bootstrap token: %w", err)
			}
			if needCertKey {
				c.CertificateKey = hex.EncodeToString(randomBytes(32))
				cfg, err := RenderKubeadmConfig(s, t.Name, EnvOf(t.Facts()), c.CertificateKey)
				if err != nil {
					return true, err
				}
				if _, err := t.Upload(ctx, connector.File{Path: uploadCertsConfig, Data: cfg, Mode: 0o600}); err != nil {
					return true, err
				}
				_, err = t.Sudo(ctx, BinDir+"/kubeadm init phase upload-certs --upload-certs --skip-certificate-key-print --config "+uploadCertsConfig+
					"; rc=$?; rm -f "+uploadCertsConfig+"; exit $rc")
				if err != nil {
					return true, KubeadmError("upload the control-plane certificates", err)
				}
			}
			st.set(c)
			return true, nil
		},
	}
}

// bootstrapTokenSecret is the Secret that makes a bootstrap token, as kubeadm creates it.
func bootstrapTokenSecret(id, secret string, expires time.Time) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-%s
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  description: "kk join token"
  token-id: %s
  token-secret: %s
  expiration: %s
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
  auth-extra-groups: system:bootstrappers:kubeadm:default-node-token
`, id, id, secret, expires.UTC().Format(time.RFC3339))
}

// CACertHash is kubeadm's discovery hash of a CA certificate: sha256 of its public key info.
func CACertHash(caPEM []byte) (string, error) {
	b, _ := pem.Decode(caPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return "", errors.New("the cluster CA is not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return "", fmt.Errorf("the cluster CA: %w", err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return b
}

// randomString is n characters of [a-z0-9], as bootstrap tokens are made of.
func randomString(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := randomBytes(n)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// joinState is how far a node got in joining the cluster.
type joinState int

const (
	notJoined joinState = iota
	// registered: the kubelet has its credentials and the API server knows the node, but a
	// control plane lacks kubeadm's control-plane label (its join stopped before the end)
	registered
	joinedAll // a worker that is registered, a control plane that also has the label
)

// apiAsk is how long joined asks an API server that does not answer (about 2 minutes with
// kubectl's own 20 s): kk restarts the API servers one at a time in the same run (kk add
// nodes' etcd members, certificate renewal), and on a loaded machine a restarted one is slow
// to serve.
var apiAsk = retry.Policy{Attempts: 4, Initial: 5 * time.Second, Factor: 2, Cap: 20 * time.Second}

// errNoAnswer is kubectl's failure other than NotFound: the API server did not answer.
var errNoAnswer = errors.New("the API server does not answer")

// joined tells how far this node got: its kubelet kubeconfig exists and the API server knows
// the node (and, for a control plane, has marked it one). An API server that cannot be asked is
// an error, never "not joined" (that would reset a working node).
func joined(ctx context.Context, t *pipeline.Target, controlPlane bool) (joinState, error) {
	files := "[ -f " + KubeletConf + " ]"
	if controlPlane {
		files += " && [ -f " + AdminConf + " ] && [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ]"
	}
	if ok, err := t.Test(ctx, files); err != nil || !ok {
		return notJoined, err
	}
	// the kubelet's own identity may read its Node; an API server that does not answer is
	// asked again for a while (apiAsk)
	var res connector.Result
	_, err := retry.Do(ctx, apiAsk, func(err error) bool { return errors.Is(err, errNoAnswer) }, func(ctx context.Context, _ int) error {
		var err error
		res, err = t.Exec(ctx, BinDir+"/kubectl --kubeconfig="+KubeletConf+" --request-timeout=20s get node "+connector.Quote(t.Name)+" -o jsonpath='{.metadata.labels}'",
			connector.ExecOptions{Sudo: true})
		if err == nil && res.ExitCode != 0 && !strings.Contains(res.Stderr, "NotFound") {
			return errNoAnswer
		}
		return err
	}, func(attempt int, _ error, wait time.Duration) {
		if t.Log != nil {
			t.Log.Info("the API server does not answer through "+KubeletConf+"; asking again", "attempt", attempt, "in", wait,
				"error", strings.TrimSpace(res.Stderr))
		}
	})
	if err != nil && !errors.Is(err, errNoAnswer) {
		return notJoined, err
	}
	switch {
	case res.ExitCode == 0:
		if controlPlane && !strings.Contains(res.Stdout, `"`+controlPlaneLabel+`"`) {
			return registered, nil
		}
		return joinedAll, nil
	case strings.Contains(res.Stderr, "NotFound"):
		return notJoined, nil
	}
	return notJoined, fmt.Errorf("cannot tell whether node %s is registered (the API server does not answer through %s): %s", t.Name, KubeletConf, strings.TrimSpace(res.Stderr))
}

func joinTask(s Spec, st *runState, name, desc string, sel pipeline.Selector, after []string) pipeline.Task {
	return pipeline.Task{
		Name: name, Desc: desc, Hosts: sel, After: after, Timeout: 10 * time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			n, _ := s.Node(t.Name)
			state, err := joined(ctx, t, n.ControlPlane)
			return state == joinedAll, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			n, ok := s.Node(t.Name)
			if !ok {
				return false, fmt.Errorf("%s is not a node of the cluster", t.Name)
			}
			if n.ControlPlane {
				st.cpJoin.Lock()
				defer st.cpJoin.Unlock()
			}
			if _, err := t.Sudo(ctx, stopStrayKubeadm); err != nil {
				return false, fmt.Errorf("stop a kubeadm left running by an earlier run: %w", err)
			}
			// asked again now that no kubeadm runs: a stopped join may have got further
			state, err := joined(ctx, t, n.ControlPlane)
			if err != nil || state == joinedAll {
				return false, err
			}
			c, have := st.get()
			if !have {
				return false, fmt.Errorf("no join credentials: %s already counts as a node of the cluster on %s but has not joined it (no %s or its API does not know it); "+
					"remove the node (kubectl delete node %s) and run again", t.Name, s.FirstControlPlane, KubeletConf, t.Name)
			}
			cfg, err := RenderJoinConfig(s, t.Name, EnvOf(t.Facts()), c)
			if err != nil {
				return false, err
			}
			join := BinDir + "/kubeadm join --config " + joinConfig
			if state == registered {
				// an earlier join stopped after the kubelet registered: finish the control-plane
				// part (stacked etcd member, control-plane label and taint) over what is there
				join = BinDir + "/kubeadm join phase control-plane-join all --config " + joinConfig
			} else if err := resetLeftovers(ctx, t, s); err != nil {
				return false, err
			}
			if _, err := t.Upload(ctx, connector.File{Path: joinConfig, Data: cfg, Mode: 0o600}); err != nil {
				return true, err
			}
			_, err = t.Sudo(ctx, join+"; rc=$?; rm -f "+joinConfig+"; exit $rc")
			if err != nil {
				return true, KubeadmError("kubeadm join", err)
			}
			// kubeadm returns once the kubelet has its credentials; the kubelet registers the
			// Node a moment later, and node-roles needs it
			getNode := BinDir + "/kubectl --kubeconfig=" + KubeletConf + " --request-timeout=10s get node " + connector.Quote(t.Name) + " -o name"
			if _, err := t.Sudo(ctx, "for i in $(seq 90); do "+getNode+" >/dev/null 2>&1 && exit 0; sleep 2; done; "+getNode); err != nil {
				return true, fmt.Errorf("kubeadm join succeeded but node %s did not register: %w", t.Name, err)
			}
			return true, nil
		},
	}
}

// RewriteServer returns a kubeconfig with every cluster's server set to server.
func RewriteServer(kubeconfig []byte, server string) ([]byte, error) {
	var m map[string]any
	if err := yaml.Unmarshal(kubeconfig, &m); err != nil {
		return nil, fmt.Errorf("read admin kubeconfig: %w", err)
	}
	clusters, _ := m["clusters"].([]any)
	if len(clusters) == 0 {
		return nil, errors.New("admin kubeconfig has no cluster")
	}
	for _, c := range clusters {
		cm, _ := c.(map[string]any)
		inner, _ := cm["cluster"].(map[string]any)
		if inner == nil {
			return nil, errors.New("admin kubeconfig: a cluster entry has no cluster")
		}
		inner["server"] = server
	}
	return yaml.Marshal(m)
}

// WriteLocalKubeconfig writes data to path with mode 0600 (atomically), unless the file
// already holds it with that mode; it reports whether it wrote.
func WriteLocalKubeconfig(path string, data []byte) (bool, error) {
	if cur, err := os.ReadFile(path); err == nil && string(cur) == string(data) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == 0o600 {
			return false, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kubeconfig-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), path)
}

func localKubeconfigCurrent(path string, want []byte) bool {
	cur, err := os.ReadFile(path)
	if err != nil || string(cur) != string(want) {
		return false
	}
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().Perm() == 0o600
}

// KubeconfigTask is the task that copies admin.conf to root's kubeconfig on every control
// plane and writes the admin kubeconfig here (after kk certs renew: their certificates
// changed). It runs after after.
func KubeconfigTask(s Spec, after []string) pipeline.Task {
	t := kubeconfigTask(s)
	t.After = after
	return t
}

// KubeadmConfigTask is the task that writes kubeadm's configuration on the control planes
// sel, after after (kk delete node: the file of what stays no longer names the deleted host).
func KubeadmConfigTask(s Spec, sel pipeline.Selector, after []string) pipeline.Task {
	t := kubeadmConfigTask(s)
	t.Hosts, t.After = sel, after
	return t
}

func kubeconfigTask(s Spec) pipeline.Task {
	rootCopy := `[ -f ` + RootKubeconfig + ` ] && cmp -s ` + AdminConf + ` ` + RootKubeconfig + ` && [ "$(stat -c %a ` + RootKubeconfig + `)" = 600 ]`
	local := func(ctx context.Context, t *pipeline.Target) ([]byte, error) {
		admin, err := t.Fetch(ctx, AdminConf)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", AdminConf, err)
		}
		servers := s.KubeconfigServers
		if len(servers) == 0 {
			servers = []APIServer{{URL: s.KubeconfigServer}}
		}
		return LocalKubeconfig(admin, servers, FirstReachable(servers, 2*time.Second))
	}
	return pipeline.Task{
		Name: TaskKubeconfig, Desc: "admin kubeconfig in " + RootKubeconfig + " on control planes and in " + s.Kubeconfig + " here",
		Hosts: pipeline.Role(string(config.RoleControlPlane)), After: []string{TaskInit, TaskJoinControlPlane},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if ok, err := t.Test(ctx, rootCopy); err != nil || !ok {
				return false, err
			}
			if t.Name != s.FirstControlPlane {
				return true, nil
			}
			want, err := local(ctx, t)
			if err != nil {
				return false, err
			}
			return localKubeconfigCurrent(s.Kubeconfig, want), nil
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			changed := false
			if ok, err := t.Test(ctx, rootCopy); err != nil {
				return false, err
			} else if !ok {
				if _, err := t.Sudo(ctx, "install -d -m 700 /root/.kube && install -m 600 "+AdminConf+" "+RootKubeconfig); err != nil {
					return false, err
				}
				changed = true
			}
			if t.Name != s.FirstControlPlane {
				return changed, nil
			}
			want, err := local(ctx, t)
			if err != nil {
				return changed, err
			}
			wrote, err := WriteLocalKubeconfig(s.Kubeconfig, want)
			if err != nil {
				return changed, fmt.Errorf("write %s on this machine: %w", s.Kubeconfig, err)
			}
			return changed || wrote, nil
		},
	}
}

// errNotRegistered: a node of the config the API server does not list (yet).
var errNotRegistered = errors.New("nodes not registered with the API server")

// RoleChange is one change node-roles makes.
type RoleChange struct {
	Node string
	// Label is "key=value" to set, Untaint a "key:Effect" taint to remove.
	Label, Untaint string
}

type nodeItem struct {
	Metadata struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		Taints []struct {
			Key    string `json:"key"`
			Effect string `json:"effect"`
		} `json:"taints"`
	} `json:"spec"`
}

type nodeList struct {
	Items []nodeItem `json:"items"`
}

// RoleChanges compares the nodes (kubectl get nodes -o json) with the spec: workers carry
// the label node-role.kubernetes.io/worker, every node its configured labels, and control
// planes that are also workers no NoSchedule taint of their role.
func RoleChanges(s Spec, nodesJSON []byte) ([]RoleChange, error) {
	var l nodeList
	if err := json.Unmarshal(nodesJSON, &l); err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	var out []RoleChange
	var missing []string
	for _, n := range s.Nodes {
		i := slices.IndexFunc(l.Items, func(it nodeItem) bool { return it.Metadata.Name == n.Name })
		if i < 0 {
			missing = append(missing, n.Name)
			continue
		}
		item := l.Items[i]
		want := map[string]string{}
		if n.Worker {
			want["node-role.kubernetes.io/worker"] = ""
		}
		for k, v := range n.Labels {
			want[k] = v
		}
		for _, k := range sortedKeys(want) {
			if v, ok := item.Metadata.Labels[k]; !ok || v != want[k] {
				out = append(out, RoleChange{Node: n.Name, Label: k + "=" + want[k]})
			}
		}
		if n.ControlPlane && n.Worker {
			for _, tn := range item.Spec.Taints {
				if (tn.Key == "node-role.kubernetes.io/control-plane" || tn.Key == "node-role.kubernetes.io/master") && tn.Effect == "NoSchedule" {
					out = append(out, RoleChange{Node: n.Name, Untaint: tn.Key + ":" + tn.Effect})
				}
			}
		}
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("%w: %s", errNotRegistered, strings.Join(missing, ", "))
	}
	return out, nil
}

func nodeRolesTask(s Spec, sel pipeline.Selector) pipeline.Task {
	changes := func(ctx context.Context, t *pipeline.Target) ([]RoleChange, error) {
		out, err := t.Sudo(ctx, Kubectl+" get nodes -o json")
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		return RoleChanges(s, []byte(out))
	}
	return pipeline.Task{
		Name: TaskNodeRoles, Desc: "worker labels, node labels, control planes that are workers made schedulable",
		Hosts: sel, After: []string{TaskInit, TaskKubeconfig, TaskJoinControlPlane, TaskJoinWorker}, Barrier: true,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if none, err := noAPIYet(ctx, t); err != nil || none {
				return false, err
			}
			ch, err := changes(ctx, t)
			if t.DryRun && errors.Is(err, errNotRegistered) {
				return false, nil // nodes this run would join
			}
			return len(ch) == 0 && err == nil, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			ch, err := changes(ctx, t)
			if err != nil {
				return false, err
			}
			for _, c := range ch {
				cmd := Kubectl + " label node " + connector.Quote(c.Node) + " --overwrite " + connector.Quote(c.Label)
				if c.Untaint != "" {
					cmd = Kubectl + " taint node " + connector.Quote(c.Node) + " " + connector.Quote(c.Untaint+"-")
				}
				if _, err := t.Sudo(ctx, cmd); err != nil {
					return true, err
				}
			}
			return len(ch) > 0, nil
		},
	}
}
