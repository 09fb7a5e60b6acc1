package certs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ExpiresLayout is how the table shows a time (kubeadm's layout, always UTC).
const ExpiresLayout = "Jan 02, 2006 15:04 UTC"

// WriteTable prints rows as a table. A certificate expiring within Soon is marked "<30d" in
// a last column, an expired one "EXPIRED". Plain text, no colours.
func WriteTable(w io.Writer, rows []Row) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tCERTIFICATE\tEXPIRES\tRESIDUAL\tCA\tRENEWS\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Host, r.Certificate, r.Expires.UTC().Format(ExpiresLayout),
			r.Residual, r.CA, yesNo(r.Renews), note(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// the empty last cell leaves trailing blanks: trim them
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := w.Write(out.Bytes())
	return err
}

func note(r Row) string {
	switch {
	case r.Expired:
		return "EXPIRED"
	case r.ExpiresSoon:
		return "<30d"
	}
	return ""
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// WriteJSON prints rows as a JSON array (an empty array when there are none).
func WriteJSON(w io.Writer, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// CAWarnings returns one line per CA expiring within CAWarning (a year): kk renews leaves,
// never a CA, and replacing a CA takes planning.
func CAWarnings(rows []Row) []string {
	var out []string
	for _, r := range rows {
		if !r.IsCA || r.ResidualSeconds >= int64(CAWarning/time.Second) {
			continue
		}
		when := "expires in " + r.Residual
		if r.Expired {
			when = "has expired"
		}
		out = append(out, fmt.Sprintf("warning: host %s: CA %s (%s) %s, on %s; kk does not renew CAs: plan its replacement",
			r.Host, r.Certificate, r.Path, when, r.Expires.UTC().Format(ExpiresLayout)))
	}
	return out
}

// ExpiringWithin returns the rows that expire within d (the expired ones included).
func ExpiringWithin(rows []Row, d time.Duration) []Row {
	var out []Row
	for _, r := range rows {
		if r.ResidualSeconds <= int64(d/time.Second) {
			out = append(out, r)
		}
	}
	return out
}

// maxDays is the most days a time.Duration holds.
const maxDays = int64(math.MaxInt64 / int64(24*time.Hour))

// ParseWithin reads a span of time as a Go duration ("720h", "90m") or days ("30d"),
// optionally followed by a Go duration ("1d12h"). It must not be negative.
func ParseWithin(s string) (time.Duration, error) {
	bad := func(why string) error {
		return fmt.Errorf("invalid duration %q: %s (want a Go duration like 72h, or days like 30d or 1d12h)", s, why)
	}
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, bad("empty")
	}
	var total time.Duration
	if i := strings.IndexByte(rest, 'd'); i >= 0 { // no Go duration unit has a 'd'
		digits := rest[:i]
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			return 0, bad("days must be a whole number")
		}
		n, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || n > maxDays {
			return 0, bad("too long")
		}
		total = time.Duration(n) * 24 * time.Hour
		rest = rest[i+1:]
		if rest == "" {
			return total, nil
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, bad(strings.TrimPrefix(err.Error(), "time: "))
	}
	if d < 0 {
		return 0, bad("negative")
	}
	if d > time.Duration(math.MaxInt64)-total {
		return 0, bad("too long")
	}
	return total + d, nil
}
