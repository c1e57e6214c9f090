package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pgCluster is a PostgreSQL server of one test's own, in a temporary
// folder, for tests that stop, kill and restart it: the server of
// FEEDBACKD_TEST_POSTGRES_URL, which other suites share, is never touched.
// It needs PostgreSQL's server binaries (initdb, pg_ctl); as root it runs
// them as the postgres user, as scripts/with-postgres.sh does.
type pgCluster struct {
	bin, dir string
	port     int
	runas    []string
}

// newCluster creates and starts a cluster, stopped and removed when t
// ends. Without the binaries t is skipped, or fails when
// FEEDBACKD_REQUIRE_POSTGRES=1.
func newCluster(t testing.TB) *pgCluster {
	t.Helper()
	bin := serverBinaries()
	if bin == "" {
		if os.Getenv("FEEDBACKD_REQUIRE_POSTGRES") == "1" {
			t.Fatal("FEEDBACKD_REQUIRE_POSTGRES=1 but PostgreSQL's initdb and pg_ctl are not installed")
		}
		t.Skip("skipped: PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
	}
	dir, err := os.MkdirTemp("", "feedbackd-pgcluster")
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.runas = []string{"runuser", "-u", "postgres", "--"}
	}
	t.Cleanup(func() {
		_ = c.pgctl("-m", "immediate", "stop")
		os.RemoveAll(dir)
	})
	if out, err := c.command("initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	for range 8 {
		c.port = clusterPort()
		if err := c.start(); err == nil {
			return c
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
	t.Fatalf("the PostgreSQL cluster did not start:\n%s", log)
	return nil
}

// clusterPort picks a port below the kernel's ephemeral range: the
// cluster is stopped and started again on its port, and while it is down
// an outgoing connection of any process could otherwise take that port
// as its own end and keep the server from listening again.
func clusterPort() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	from := min(10000, low/2)
	return from + rand.IntN(max(1, low-from))
}

// URL is the postgres database's URL.
func (c *pgCluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Stop shuts the server down the fast way (pg_ctl -m fast): sessions are
// ended, open transactions rolled back.
func (c *pgCluster) Stop(t testing.TB) {
	t.Helper()
	if err := c.pgctl("-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		t.Fatalf("pg_ctl stop: %v", err)
	}
}

// Kill sends SIGKILL to the postmaster and returns once it is gone. Its
// backends leave when they notice; Start waits for them.
func (c *pgCluster) Kill(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil && !c.listening() {
			return
		}
	}
	t.Fatal("the killed PostgreSQL's processes did not exit within 30s")
}

// Start starts the server again on the same port (after Stop or Kill; it
// recovers from a kill by itself) and returns once it accepts sessions.
func (c *pgCluster) Start(t testing.TB) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err = c.start(); err == nil {
			return
		}
	}
	log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	t.Fatalf("PostgreSQL did not start again: %v\n%s", err, log)
}

func (c *pgCluster) start() error {
	// fsync is off (the cluster lives for one test, and a killed
	// process's writes survive in the page cache); synchronous_commit
	// stays on, so a commit acknowledged is in the WAL before a kill.
	return c.pgctl("-l", filepath.Join(c.dir, "postgres.log"), "-w", "-t", "60",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200", c.port, c.dir),
		"start")
}

func (c *pgCluster) listening() bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.port), time.Second)
	if err == nil {
		conn.Close()
	}
	return err == nil
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

func (c *pgCluster) pgctl(args ...string) error {
	out, err := c.command("pg_ctl", append([]string{"-D", c.data()}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

func (c *pgCluster) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, c.runas...), filepath.Join(c.bin, name)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// serverBinaries is the folder of the newest installed initdb and pg_ctl,
// or "".
func serverBinaries() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "pg_ctl")) && isExecutable(filepath.Join(d, "initdb")) {
			return d
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if d := filepath.Dir(p); isExecutable(filepath.Join(d, "initdb")) {
			return d
		}
	}
	return ""
}

func pgVersion(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&0o111 != 0
}
