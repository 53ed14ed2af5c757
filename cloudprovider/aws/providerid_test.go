package aws

import (
	"strings"
	"testing"
)

func TestParseProviderID(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "aws:///us-east-1a/i-0123456789abcdef0", want: "i-0123456789abcdef0"},
		{in: "aws:///i-0123456789abcdef0", want: "i-0123456789abcdef0"},
		{in: "aws://us-east-1a/i-0123", err: "must start with aws:///"},
		{in: "aws:///us-east-1a/", err: "want aws:///<zone>/i-<id>"},
		{in: "aws:///a/b/i-1", err: "want aws:///<zone>/i-<id>"},
		{in: "aws:///us-east-1a/vol-1", err: "want aws:///<zone>/i-<id>"},
		{in: "", err: "must start with aws:///"},
	}
	for _, tt := range tests {
		got, err := ParseProviderID(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseProviderID(%q) = %q, %v; want error %q naming the input", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseProviderID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if ProviderID("us-east-1a", got) != "aws:///us-east-1a/"+got {
			t.Errorf("ProviderID does not render the parsed id back")
		}
	}
}

func FuzzParseProviderID(f *testing.F) {
	for _, s := range []string{"aws:///us-east-1a/i-0123456789abcdef0", "aws:///i-1", "aws:///", "aws:///a/b/c", "gce://x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseProviderID(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(id, "i-") || strings.Contains(id, "/") || !strings.HasSuffix(s, "/"+id) {
			t.Fatalf("ParseProviderID(%q) = %q", s, id)
		}
		// Rendering and parsing again gives the same id.
		if again, err := ParseProviderID(ProviderID("us-east-1a", id)); err != nil || again != id {
			t.Fatalf("round trip of %q: %q, %v", id, again, err)
		}
	})
}
