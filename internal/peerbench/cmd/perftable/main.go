// Command perftable runs the benchmarks of topics or of the peer comparison
// and prints their medians as markdown tables, ready for BENCHMARKS.md and README.md.
//
// Run it from internal/peerbench:
//
//	go run ./cmd/perftable                  # the peer comparison (this module)
//	go run ./cmd/perftable -dir ../..       # the library's own benchmarks
//	go run ./cmd/perftable -in bench.txt    # tables from saved `go test -bench` output
//
// It runs `go test -run='^$' -bench=B -benchmem -count=N -benchtime=T .` in
// dir, copies the raw output to stderr (and to -out, if given), and prints
// the tables on stdout. Each cell is the median of the -count runs.
//
// Benchmarks named Benchmark<Scenario>/<case>/<system> (or
// BenchmarkWakeup/<system>) go into the tables: Publish (ns/publish),
// Fanout (ns/delivery, missed/op, allocs/delivery) and Wakeup (p50-ns,
// p99-ns); BenchmarkLosslessFanout/ring=<N>/subs=<M>/<system> goes into the
// lossless fan-out table, a row per ring size and system. Any other
// benchmark is listed with its own metrics.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/ringbus/topics/internal/peerbench"
)

func main() {
	count := flag.Int("count", 5, "runs of each benchmark (go test -count)")
	benchtime := flag.String("benchtime", "200ms", "go test -benchtime")
	bench := flag.String("bench", ".", "go test -bench")
	dir := flag.String("dir", ".", "directory of the package whose benchmarks to run")
	in := flag.String("in", "", "read `go test -bench` output from this file (- for stdin) instead of running")
	out := flag.String("out", "", "also write the raw output of go test to this file")
	flag.Parse()

	raw, header, err := input(*in, *dir, *bench, *count, *benchtime)
	if err == nil && *out != "" {
		err = os.WriteFile(*out, raw, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "perftable:", err)
		os.Exit(1)
	}
	res := parse(bytes.NewReader(raw))
	if len(res.order) == 0 {
		fmt.Fprintln(os.Stderr, "perftable: no benchmark results in the input")
		os.Exit(1)
	}
	if header != "" {
		fmt.Println(header)
		fmt.Println()
	}
	write(os.Stdout, res, describe)
}

// input returns the benchmark output to tabulate, and a line saying how it
// was made.
func input(in, dir, bench string, count int, benchtime string) ([]byte, string, error) {
	if in == "-" {
		b, err := io.ReadAll(os.Stdin)
		return b, "", err
	}
	if in != "" {
		b, err := os.ReadFile(in)
		return b, "", err
	}
	args := []string{"test", "-run=^$", "-bench=" + bench, "-benchmem",
		"-count=" + strconv.Itoa(count), "-benchtime=" + benchtime, "."}
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&buf, os.Stderr)
	cmd.Stderr = os.Stderr
	fmt.Fprintf(os.Stderr, "perftable: in %s: go %s\n", dir, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return nil, "", fmt.Errorf("go test: %w", err)
	}
	goVersion := runtime.Version()
	if v, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		goVersion = strings.TrimSpace(string(v))
	}
	return buf.Bytes(), fmt.Sprintf("Medians of %d runs (`go test -bench=%s -benchmem -count=%d -benchtime=%s`), %s, %d CPUs, %s.",
		count, bench, count, benchtime, cpuModel(buf.Bytes()), runtime.NumCPU(), goVersion), nil
}

// cpuModel returns the "cpu:" line of go test's output.
func cpuModel(out []byte) string {
	for line := range strings.Lines(string(out)) {
		if m, ok := strings.CutPrefix(line, "cpu: "); ok {
			return strings.TrimSpace(m)
		}
	}
	return "unknown CPU"
}

// describe says what a system does with a slow subscriber, and why a
// scenario was not run, for the peers that peerbench knows.
func describe(system string) string {
	p, ok := peerbench.Lookup(system)
	if !ok {
		return ""
	}
	d := p.Slow
	if p.NoStall != "" {
		d += "; not measured with stalled subscribers: " + p.NoStall
	}
	if p.Inline {
		d += "; no wake-up figure: no subscriber goroutine is woken"
	}
	return d
}

// results holds every value reported per benchmark and unit.
type results struct {
	order  []string                        // benchmark names, in order of appearance
	values map[string]map[string][]float64 // name → unit → values
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads `go test -bench` output.
func parse(r io.Reader) results {
	res := results{values: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		m, ok := res.values[name]
		if !ok {
			m = map[string][]float64{}
			res.values[name] = m
			res.order = append(res.order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m[f[i+1]] = append(m[f[i+1]], v)
		}
	}
	return res
}

// median returns the median of the values of a benchmark's unit.
func (r results) median(name, unit string) (float64, bool) {
	vs := slices.Clone(r.values[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

// A column is one figure of a table: the median of unit in the benchmark
// named prefix+"/"+system.
type column struct {
	title  string
	prefix string
	unit   string
}

var (
	publishColumns = []column{
		{"publish, 0 subscribers (ns)", "BenchmarkPublish/subs=0", "ns/publish"},
		{"allocs/publish", "BenchmarkPublish/subs=0", "allocs/op"},
		{"publish, 1 subscriber (ns)", "BenchmarkPublish/subs=1", "ns/publish"},
		{"publish, 1,000 stalled (ns)", "BenchmarkPublish/stalled=1000", "ns/publish"},
		{"wake-up p50 (ns)", "BenchmarkWakeup", "p50-ns"},
		{"wake-up p99 (ns)", "BenchmarkWakeup", "p99-ns"},
	}
	fanoutColumns = []column{
		{"1 subscriber", "BenchmarkFanout/subs=1", "ns/delivery"},
		{"10", "BenchmarkFanout/subs=10", "ns/delivery"},
		{"100", "BenchmarkFanout/subs=100", "ns/delivery"},
		{"1,000", "BenchmarkFanout/subs=1000", "ns/delivery"},
		{"missed/publish (1,000)", "BenchmarkFanout/subs=1000", "missed/op"},
		{"allocs/delivery (100)", "BenchmarkFanout/subs=100", "allocs/delivery"},
	}
	ratioColumns = []column{
		{"publish, 0 subs", "BenchmarkPublish/subs=0", "ns/publish"},
		{"publish, 1,000 stalled", "BenchmarkPublish/stalled=1000", "ns/publish"},
		{"fan-out 1", "BenchmarkFanout/subs=1", "ns/delivery"},
		{"fan-out 100", "BenchmarkFanout/subs=100", "ns/delivery"},
		{"fan-out 1,000", "BenchmarkFanout/subs=1000", "ns/delivery"},
		{"wake-up p50", "BenchmarkWakeup", "p50-ns"},
	}

	losslessColumns = []column{
		{"1 subscriber", "subs=1", "ns/delivery"},
		{"10", "subs=10", "ns/delivery"},
		{"100", "subs=100", "ns/delivery"},
		{"allocs/delivery (100)", "subs=100", "allocs/delivery"},
	}
)

const losslessPrefix = "BenchmarkLosslessFanout/"

var tabled = []string{"BenchmarkPublish/", "BenchmarkFanout/", "BenchmarkWakeup/", losslessPrefix}

// systems returns the systems of the tabled benchmarks, in order of first
// appearance.
func (r results) systems() []string {
	var out []string
	for _, name := range r.order {
		for _, p := range tabled {
			if strings.HasPrefix(name, p) {
				s := name[strings.LastIndex(name, "/")+1:]
				if !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// write prints the tables.
func write(w io.Writer, r results, describe func(string) string) {
	systems := r.systems()
	if len(systems) > 0 {
		table(w, r, "Publishing and waking up (lower is better):", systems, publishColumns, nil)
		table(w, r, "Fan-out from one publisher, ns per item actually delivered (lower is better):", systems, fanoutColumns, nil)
		if slices.Contains(systems, "topics") && len(systems) > 1 {
			table(w, r, "Each system's time ÷ topics' time in the same run (above 1: topics is faster):", systems, ratioColumns, func(col column, v float64) (float64, bool) {
				base, ok := r.median(col.prefix+"/topics", col.unit)
				if !ok || base == 0 {
					return 0, false
				}
				return v / base, true
			})
		}
		losslessTable(w, r)
		var notes []string
		for _, s := range systems {
			if d := describe(s); d != "" {
				notes = append(notes, fmt.Sprintf("- **%s** — %s.", s, d))
			}
		}
		if len(notes) > 0 {
			fmt.Fprintln(w, "With a subscriber that does not keep up:")
			fmt.Fprintln(w)
			for _, n := range notes {
				fmt.Fprintln(w, n)
			}
			fmt.Fprintln(w)
		}
	}
	others(w, r)
}

// table prints a title and one markdown table: a row per system that has a
// figure in it, a cell per column, "—" where the benchmark did not run; or
// nothing if no system has a figure. With ratio, cells are ratio(value).
func table(w io.Writer, r results, title string, systems []string, cols []column, ratio func(column, float64) (float64, bool)) {
	var rows []row
	for _, s := range systems {
		rows = append(rows, row{cells: []string{s}, system: s})
	}
	rowTable(w, r, title, []string{"system"}, rows, cols, ratio)
}

// A row of a table: its first cells, and the system whose figures follow
// them, in the benchmarks named prefix+column prefix+"/"+system.
type row struct {
	cells  []string
	prefix string
	system string
}

func (rw row) median(r results, c column) (float64, bool) {
	return r.median(rw.prefix+c.prefix+"/"+rw.system, c.unit)
}

// rowTable prints a title and a markdown table with the given rows that
// have a figure in it, or nothing if none has.
func rowTable(w io.Writer, r results, title string, heads []string, rows []row, cols []column, ratio func(column, float64) (float64, bool)) {
	rows = slices.DeleteFunc(slices.Clone(rows), func(rw row) bool {
		return !slices.ContainsFunc(cols, func(c column) bool { _, ok := rw.median(r, c); return ok })
	})
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, title)
	fmt.Fprintln(w)
	fmt.Fprint(w, "|")
	for _, h := range heads {
		fmt.Fprintf(w, " %s |", h)
	}
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c.title)
	}
	fmt.Fprint(w, "\n|")
	for range heads {
		fmt.Fprint(w, "---|")
	}
	for range cols {
		fmt.Fprint(w, "--:|")
	}
	fmt.Fprintln(w)
	for _, rw := range rows {
		fmt.Fprint(w, "|")
		for _, cell := range rw.cells {
			fmt.Fprintf(w, " %s |", cell)
		}
		for _, c := range cols {
			v, ok := rw.median(r, c)
			switch {
			case ok && ratio != nil:
				if q, ok := ratio(c, v); ok {
					fmt.Fprintf(w, " %s× |", number(q))
				} else {
					fmt.Fprint(w, " — |")
				}
			case ok:
				fmt.Fprintf(w, " %s |", number(v))
			default:
				fmt.Fprint(w, " — |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

var ringCase = regexp.MustCompile(`^` + losslessPrefix + `(ring=(\d+))/`)

// losslessTable prints the lossless fan-out table: a row per ring size (in
// order of appearance) and system that ran with it.
func losslessTable(w io.Writer, r results) {
	var rows []row
	for _, name := range r.order {
		m := ringCase.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		rw := row{prefix: losslessPrefix + m[1] + "/", system: name[strings.LastIndex(name, "/")+1:]}
		if slices.ContainsFunc(rows, func(o row) bool { return o.prefix == rw.prefix && o.system == rw.system }) {
			continue
		}
		ring, _ := strconv.ParseInt(m[2], 10, 64)
		rw.cells = []string{rw.system, thousands(ring)}
		rows = append(rows, rw)
	}
	// Group the rows by ring size, keeping the order of systems within one.
	var rings []string
	for _, rw := range rows {
		if !slices.Contains(rings, rw.prefix) {
			rings = append(rings, rw.prefix)
		}
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		return slices.Index(rings, a.prefix) - slices.Index(rings, b.prefix)
	})
	rowTable(w, r, "Lossless fan-out from one publisher, ns per item delivered (lower is better); "+
		"ring is the ring of topics and the buffer of each subscriber's channel, for the systems that have one:",
		[]string{"system", "ring"}, rows, losslessColumns, nil)
}

// others lists the benchmarks that are not in the tables, with the medians
// of their metrics other than ns/op.
func others(w io.Writer, r results) {
	var rest []string
	for _, name := range r.order {
		if !slices.ContainsFunc(tabled, func(p string) bool { return strings.HasPrefix(name, p) }) {
			rest = append(rest, name)
		}
	}
	if len(rest) == 0 {
		return
	}
	fmt.Fprintln(w, "| benchmark | medians |")
	fmt.Fprintln(w, "|---|---|")
	for _, name := range rest {
		units := make([]string, 0, len(r.values[name]))
		for u := range r.values[name] {
			if u != "ns/op" {
				units = append(units, u)
			}
		}
		// The benchmark's own figures first, then B/op and allocs/op.
		slices.SortFunc(units, func(a, b string) int {
			if d := generic(a) - generic(b); d != 0 {
				return d
			}
			return strings.Compare(a, b)
		})
		cells := make([]string, 0, len(units))
		for _, u := range units {
			v, _ := r.median(name, u)
			cells = append(cells, number(v)+" "+u)
		}
		fmt.Fprintf(w, "| %s | %s |\n", strings.TrimPrefix(name, "Benchmark"), strings.Join(cells, ", "))
	}
	fmt.Fprintln(w)
}

// generic is 1 for the units every benchmark reports with -benchmem.
func generic(unit string) int {
	if unit == "B/op" || unit == "allocs/op" {
		return 1
	}
	return 0
}

// number formats v with about three significant digits, and thousands
// separators for large values.
func number(v float64) string {
	if v < 0 {
		return "-" + number(-v)
	}
	switch {
	case v == 0:
		return "0"
	case v < 0.01:
		return strconv.FormatFloat(v, 'g', 2, 64)
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return thousands(int64(v + 0.5))
}

// thousands formats a non-negative n with thousands separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
