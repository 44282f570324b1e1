package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"standin/scripts/internal/hostload"
)

// writeCommands are the database commands that write; FerretDB's SQLite
// backend commits each in a transaction of its own.
var writeCommands = []string{"insert", "update", "delete", "findAndModify"}

// usage is a snapshot of what the cluster's processes have used: CPU
// time of each (the nodes, then the database), of this process, and the
// database's commands so far.
type usage struct {
	at       time.Time
	cpu      []time.Duration
	self     time.Duration
	iowait   time.Duration // the machine's, all CPUs
	commands map[string]int64
}

// snapshot takes a usage snapshot of the processes pids and of the
// database db.
func snapshot(ctx context.Context, pids []int, db *mongo.Client) (usage, error) {
	u := usage{self: hostload.CPUTime()}
	for _, pid := range pids {
		t, err := hostload.ProcessCPU(pid)
		if err != nil {
			return u, err
		}
		u.cpu = append(u.cpu, t)
	}
	u.at = time.Now()
	var err error
	if u.iowait, err = iowait(); err != nil {
		return u, err
	}
	u.commands, err = commandCounts(ctx, db)
	return u, err
}

// iowait is the time the machine's CPUs have spent idle while a process
// waited for the disk, from /proc/stat.
func iowait() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the machine's iowait: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("reading the machine's iowait: unexpected line %q", line)
	}
	ticks, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reading the machine's iowait: %w", err)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// userHZ is the unit of /proc/stat, fixed by the kernel's ABI.
const userHZ = 100

// iowaitCores is the machine's iowait between u and later, in cores.
func (u usage) iowaitCores(later usage) float64 {
	return (later.iowait - u.iowait).Seconds() / later.at.Sub(u.at).Seconds()
}

// cores is the CPU each process took between u and later, in cores.
func (u usage) cores(later usage) []float64 {
	secs := later.at.Sub(u.at).Seconds()
	out := make([]float64, len(u.cpu))
	for i := range u.cpu {
		out[i] = (later.cpu[i] - u.cpu[i]).Seconds() / secs
	}
	return out
}

// selfCores is the CPU this process took between u and later, in cores.
func (u usage) selfCores(later usage) float64 {
	return (later.self - u.self).Seconds() / later.at.Sub(u.at).Seconds()
}

// commandsPerS is how many of the database's commands of the names in
// names (every command when names is nil) ran a second between u and
// later.
func (u usage) commandsPerS(later usage, names []string) float64 {
	var n int64
	for name, total := range later.commands {
		if names == nil || slices.Contains(names, name) {
			n += total - u.commands[name]
		}
	}
	return float64(n) / later.at.Sub(u.at).Seconds()
}

// connectDB connects to the database at uri, for its counters.
func connectDB(uri string) (*mongo.Client, error) {
	db, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	return db, nil
}

// commandCounts reads how many commands of each name the database has
// run since it started (serverStatus: metrics.commands.<name>.total).
func commandCounts(ctx context.Context, db *mongo.Client) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var status struct {
		Metrics struct {
			Commands map[string]struct {
				Total int64 `bson:"total"`
			} `bson:"commands"`
		} `bson:"metrics"`
	}
	if err := db.Database("admin").RunCommand(ctx, bson.D{{Key: "serverStatus", Value: 1}}).Decode(&status); err != nil {
		return nil, fmt.Errorf("reading the database's counters: %w", err)
	}
	out := map[string]int64{}
	for name, c := range status.Metrics.Commands {
		out[name] = c.Total
	}
	return out, nil
}

// quantiles sets prefix+"p50_ms", prefix+"p99_ms" and prefix+"max_ms" of
// s from ds; NaN is never written: with no durations nothing is set.
func quantiles(s sample, prefix string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	at := func(q float64) float64 {
		return float64(sorted[max(int(math.Ceil(q*float64(len(sorted))))-1, 0)]) / 1e6
	}
	s[prefix+"p50_ms"], s[prefix+"p99_ms"], s[prefix+"max_ms"] = at(0.50), at(0.99), at(1)
}
