package connector

import "testing"

// quoteCases are strings that must survive Quote + a POSIX shell unchanged.
var quoteCases = []string{
	"", "plain", "with space", "it's", "''", `"double"`, `back\slash`, "$HOME", "$(id)", "`id`",
	"a;b", "a|b&c", "-n", "--", "*", "?", "[a]", "~", "#x", "new\nline", "tab\there", "ünïcødé", "=", "a=b",
	"%s", "!", "{a,b}",
}

func TestQuote(t *testing.T) {
	cases := map[string]string{
		"":            "''",
		"abc":         "abc",
		"/etc/a.conf": "/etc/a.conf",
		"user@host:1": "user@host:1",
		"a b":         "'a b'",
		"it's":        `'it'"'"'s'`,
		"$x":          "'$x'",
		"~":           "'~'",
		"*":           "'*'",
	}
	for in, want := range cases {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
	if got := Cmd("echo", "a b", "", "c"); got != "echo 'a b' '' c" {
		t.Errorf("Cmd = %s", got)
	}
	if got := Cmd(); got != "" {
		t.Errorf("Cmd() = %q", got)
	}
}
