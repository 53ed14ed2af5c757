package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func main() {
	if err := runMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// runMain parses args, compares the selected workloads and prints one Line per
// workload to out (and Details to errOut with -v).
func runMain(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(errOut)
	sizesFlag := fs.String("sizes", fmt.Sprintf("%d,%d", sizeSmall, sizeLarge), "pod counts of the sized workloads (karpentermix, mixed, mixed-cmr), comma-separated")
	reps := fs.Int("reps", 5, "solves per scheduler and workload; medians are reported")
	match := fs.String("run", "", "only workloads whose name matches this regular expression")
	verbose := fs.Bool("v", false, "also print times, Karpenter's bill range and unschedulable counts to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sizes []int
	for _, s := range strings.Split(*sizesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-sizes: %q is not a positive pod count", s)
		}
		sizes = append(sizes, n)
	}
	re, err := regexp.Compile(*match)
	if err != nil {
		return fmt.Errorf("-run: %w", err)
	}
	// Karpenter logs through controller-runtime; the comparison prints its
	// own results only.
	ctrllog.SetLogger(logr.Discard())
	workloads, err := Workloads(sizes)
	if err != nil {
		return err
	}
	for _, w := range workloads {
		if !re.MatchString(w.Name) {
			continue
		}
		res, err := Compare(ctx, w, *reps)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, res.Line())
		if *verbose {
			fmt.Fprintln(errOut, res.Details())
		}
	}
	return nil
}
