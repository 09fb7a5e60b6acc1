package certs

import (
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/pipeline/connector"
)

// Markers of the host command's output (lines no PEM or base64 text can be).
const (
	markFile  = "@@kk-certs file "
	markEnd   = "@@kk-certs end"
	markTimer = "@@kk-certs timer "
)

// Script is the one command run (as root) on each control-plane and etcd host. It prints,
// between markers, each existing certificate file's CERTIFICATE blocks and nothing else (the
// kubelet's kubelet-client-current.pem also holds its key: dropped on the host), and for each
// kubeconfig a kubeconfig holding only its users' client certificates (never client-key-data).
// It never opens a key file. Then the state of TimerUnit. Command output goes to the host's
// log, so nothing secret may be printed.
func Script(etcdType string) string {
	var b strings.Builder
	b.WriteString(`set +e
B=` + connector.Quote(markFile) + `
E=` + connector.Quote(markEnd) + `
certs() { awk '/-----BEGIN CERTIFICATE-----/{p=1} p{print} /-----END CERTIFICATE-----/{p=0}' "$1"; }
cert() { [ -f "$1" ] || return 0; printf '%s%s\n' "$B" "$1"; certs "$1"; echo "$E"; }
kubeconfig() {
  [ -f "$1" ] || return 0
  printf '%s%s\napiVersion: v1\nkind: Config\nusers:\n' "$B" "$1"
  awk '$1=="client-certificate-data:"{n++; printf "- name: user%d\n  user:\n    client-certificate-data: %s\n", n, $2}' "$1"
  refs=$(awk '$1=="client-certificate:"{print $2}' "$1" | tr -d "\"'")
  n=0
  for r in $refs; do
    case "$r" in /*) ;; *) r="$(dirname "$1")/$r" ;; esac
    n=$((n+1)); printf '%s\n' "- name: file$n" "  user:" "    client-certificate: \"$r\""
  done
  echo "$E"
  for r in $refs; do case "$r" in /*) ;; *) r="$(dirname "$1")/$r" ;; esac; cert "$r"; done
}
`)
	for _, f := range kubeadmFiles {
		b.WriteString("cert " + connector.Quote(f.path) + "\n")
	}
	for _, k := range kubeconfigs {
		b.WriteString("kubeconfig " + connector.Quote(KubeconfigDir+"/"+k) + "\n")
	}
	b.WriteString("cert " + connector.Quote(KubeletClientCert) + "\n")
	switch etcdType {
	case config.EtcdKubeKey:
		b.WriteString("for f in " + etcd.CertDir + `/*.pem; do case "$f" in *-key.pem) ;; *) cert "$f" ;; esac; done` + "\n")
	case config.EtcdExternal:
		b.WriteString("cert " + connector.Quote(etcd.ClientCAFile) + "\ncert " + connector.Quote(etcd.ClientCertFile) + "\n")
	}
	b.WriteString(`if command -v systemctl >/dev/null 2>&1; then
  if s=$(systemctl show -p LoadState -p UnitFileState -p ActiveState -p LastTriggerUSec ` + TimerUnit + ` 2>&1); then
    printf '%s\n' "$s" | sed 's/^/` + markTimer + `/'
  else
    printf '%s\n' "$s" | tail -n 1 | sed 's/^/` + markTimer + `Error=/'
  fi
else
  echo ` + connector.Quote(markTimer+"NoSystemd=yes") + `
fi
`)
	return b.String()
}

// Timer is the state of TimerUnit on a host, from systemctl show.
type Timer struct {
	LoadState     string `json:"loadState"`     // "loaded" when installed, "not-found" when not
	UnitFileState string `json:"unitFileState"` // enabled, disabled, ...
	ActiveState   string `json:"activeState"`   // active (waiting), inactive
	LastTrigger   string `json:"lastTrigger"`   // systemd's time, "" or "n/a" when never
	NoSystemd     bool   `json:"noSystemd"`     // no systemctl on the host
	Error         string `json:"error"`         // why systemctl show failed (no systemd running)
}

// Installed reports whether the timer unit exists on the host.
func (t Timer) Installed() bool { return t.LoadState == "loaded" }

// String says in a few words whether the timer is installed, enabled, and when it last ran.
func (t Timer) String() string {
	switch {
	case t.NoSystemd:
		return "unknown (no systemctl)"
	case t.Error != "":
		return "unknown (systemctl: " + t.Error + ")"
	case t.LoadState == "":
		return "unknown (not read)"
	case !t.Installed():
		return "not installed"
	}
	s := "installed, " + or(t.UnitFileState, "unknown") + ", " + or(t.ActiveState, "unknown")
	switch t.LastTrigger {
	case "", "n/a", "0":
		return s + ", never triggered"
	}
	return s + ", last triggered " + t.LastTrigger
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ParseOutput reads Script's output: the files it printed and the timer's state.
func ParseOutput(out string) (Files, Timer) {
	files := Files{}
	var t Timer
	var cur string
	var body strings.Builder
	in := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, markFile):
			cur, in = strings.TrimPrefix(line, markFile), true
			body.Reset()
		case line == markEnd:
			if in && cur != "" {
				files[cur] = []byte(body.String())
			}
			in = false
		case in:
			body.WriteString(line)
			body.WriteByte('\n')
		case strings.HasPrefix(line, markTimer):
			k, v, _ := strings.Cut(strings.TrimPrefix(line, markTimer), "=")
			switch k {
			case "LoadState":
				t.LoadState = v
			case "UnitFileState":
				t.UnitFileState = v
			case "ActiveState":
				t.ActiveState = v
			case "LastTriggerUSec":
				t.LastTrigger = v
			case "NoSystemd":
				t.NoSystemd = true
			case "Error":
				t.Error = v
			}
		}
	}
	return files, t
}
