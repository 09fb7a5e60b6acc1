package etcd

import (
	"context"
	"path"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// BackupScript is the path of the snapshot script on members.
func (s Spec) BackupScript() string {
	dir := s.Etcd.BackupScriptDir
	if dir == "" {
		dir = "/usr/local/bin/kube-scripts"
	}
	return path.Join(dir, "etcd-backup.sh")
}

func (s Spec) backupDir() string {
	if s.Etcd.BackupDir == "" {
		return "/var/backups/kube_etcd"
	}
	return s.Etcd.BackupDir
}

// BackupFiles renders the backup script, service and timer of member name: a snapshot of the
// member every BackupPeriod minutes into BackupDir, keeping the KeepBackupNumber newest.
func (s Spec) BackupFiles(name string) ([]connector.File, error) {
	period, keep := s.Etcd.BackupPeriod, s.Etcd.KeepBackupNumber
	if period <= 0 {
		period = 1440
	}
	if keep <= 0 {
		keep = 5
	}
	script, err := templates.Render("etcd/etcd-backup.sh", map[string]any{
		"Name": name, "Dir": connector.Quote(s.backupDir()), "Keep": keep, "Etcdctl": etcdctl,
		"Endpoint": localEndpoint(s.Etcd),
		"CAFile":   caFile, "CertFile": adminCert, "KeyFile": adminKey,
	})
	if err != nil {
		return nil, err
	}
	svc, err := templates.Render("etcd/etcd-backup.service", map[string]any{"Dir": s.backupDir(), "Script": s.BackupScript()})
	if err != nil {
		return nil, err
	}
	timer, err := templates.Render("etcd/etcd-backup.timer", map[string]any{"Period": period})
	if err != nil {
		return nil, err
	}
	return []connector.File{
		{Path: s.BackupScript(), Data: script, Mode: 0o755},
		{Path: "/etc/systemd/system/" + BackupUnit + ".service", Data: svc, Mode: 0o644},
		{Path: "/etc/systemd/system/" + BackupUnit + ".timer", Data: timer, Mode: 0o644},
	}, nil
}

func backupTask(s Spec, sel pipeline.Selector) pipeline.Task {
	timer := BackupUnit + ".timer"
	return pipeline.Task{
		Name: TaskBackup, Desc: "periodic etcd snapshot (script, " + BackupUnit + ".service and .timer)",
		Hosts: sel, After: []string{TaskHealth},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := s.BackupFiles(t.Name)
			if err != nil {
				return false, err
			}
			return t.Test(ctx, sameFiles(files)+" && systemctl is-enabled --quiet "+timer+" && systemctl is-active --quiet "+timer)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := s.BackupFiles(t.Name)
			if err != nil {
				return false, err
			}
			changed, err := t.UploadAll(ctx, files)
			if err != nil {
				return changed, err
			}
			cmd := "systemctl daemon-reload && systemctl enable --now " + timer
			if changed {
				cmd += " && systemctl restart " + timer
			}
			_, err = t.Sudo(ctx, cmd)
			return true, err
		},
	}
}
