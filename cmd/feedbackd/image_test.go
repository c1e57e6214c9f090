package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/feedbackd/feedbackd/client"
)

// The container image (Containerfile, make image), built and run with the
// real podman as a self-hoster runs it: the README's commands, a published
// loopback port, a named volume.

// runImageArgs is the README's podman run, for a container name, a volume,
// the host's port and the image. The port is published on 127.0.0.1 only.
func runImageArgs(name, volume string, port int, image string) []string {
	return []string{"run", "-d", "--name", name, "--read-only",
		"-v", volume + ":/data", "-p", fmt.Sprintf("127.0.0.1:%d:8787", port), image}
}

// The README's "Run it in a container" runs the image with the arguments
// the image test runs it with, so what the test proves is what users type.
func TestREADMERunsTheImageAsTheImageTestDoes(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, engine := range []string{"podman", "docker"} {
		want := engine + " " + strings.Join(runImageArgs("feedbackd", "feedbackd-data", 8787, "feedbackd"), " ")
		if !bytes.Contains(readme, []byte(want)) {
			t.Errorf("README.md does not say %q", want)
		}
	}
}

// podmanCLI runs podman commands for the image test.
type podmanCLI struct {
	// conf is the containers.conf podman reads instead of the machine's:
	// see testdata/containers.conf for why running a container needs it.
	conf string
}

// run runs podman with args and returns its stdout; it fails t when podman
// fails or hangs.
func (p podmanCLI) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := p.try(args...)
	if err != nil {
		t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// try runs podman with args and returns its stdout, or an error carrying
// its stderr.
func (p podmanCLI) try(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", args...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s%s", err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String(), nil
}

// logs returns what the container named name wrote, stdout and stderr
// in one (podman logs replays each on its own).
func (p podmanCLI) logs(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", "logs", name)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman logs %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// requirePodman skips t where podman is not installed, or fails it when
// FEEDBACKD_REQUIRE_PODMAN=1 (CI sets it, and installs podman).
func requirePodman(t *testing.T) podmanCLI {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		if os.Getenv("FEEDBACKD_REQUIRE_PODMAN") == "1" {
			t.Fatal("FEEDBACKD_REQUIRE_PODMAN=1 but podman is not installed")
		}
		t.Skip("podman not found: the container image is NOT built or tested")
	}
	conf, err := filepath.Abs("testdata/containers.conf")
	if err != nil {
		t.Fatal(err)
	}
	return podmanCLI{conf: conf}
}

// make image builds an image that serves the API from a volume, as a
// numeric non-root user, on a read-only root filesystem, and keeps its
// data and first key across a restart and a new container.
func TestContainerImage(t *testing.T) {
	podman := requirePodman(t)
	name := fmt.Sprintf("feedbackd-test-%d-%d", os.Getpid(), rand.Uint32())
	image, volume := "localhost/"+name+":latest", name+"-data"
	// Registered before anything exists, so a failure at any step still
	// removes whatever the steps before it made.
	t.Cleanup(func() {
		for _, args := range [][]string{
			{"rm", "--force", "--ignore", name},
			{"volume", "rm", "--force", volume},
			{"rmi", "--force", "--ignore", image},
		} {
			_, _ = podman.try(args...)
		}
		for what, args := range map[string][]string{
			"container": {"container", "exists", name},
			"volume":    {"volume", "exists", volume},
			"image":     {"image", "exists", image},
		} {
			if _, err := podman.try(args...); err == nil {
				t.Errorf("the test's %s is left behind after cleanup", what)
			}
		}
	})

	// make image as users run it. Building needs no CONTAINERS_CONF: no
	// container runs while the image builds.
	ctx, cancel := context.WithTimeout(context.Background(), 10*hangGuard)
	defer cancel()
	build := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", "../..", "image", "IMAGE="+image, "CONTAINER_ENGINE=podman")
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Log(lastLine(string(out))) // the image's size

	t.Run("VersionNamesTheReleaseAndTheCommit", func(t *testing.T) {
		doc, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
		if err != nil {
			t.Fatal(err)
		}
		got := podman.run(t, "run", "--rm", image, "version")
		want := "feedbackd " + doc.Info.Version + " ("
		// Go stamps the commit only where .git is a directory: a clean
		// clone, as in CI, but not a git worktree.
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if fi, statErr := os.Stat("../../.git"); err == nil && statErr == nil && fi.IsDir() {
			want += "commit " + strings.TrimSpace(string(head))
		} else {
			t.Logf("not a checkout Go stamps (no .git directory): only the release is checked")
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("version in the image: got %q, want it to start with %q", got, want)
		}
	})

	port := clusterPort() // the port is published again after a restart
	args := runImageArgs(name, volume, port, image)
	// podman's --read-only still mounts a writable tmpfs on /tmp, /var/tmp
	// and /run, docker's does not: without them, only /data is writable.
	args = append(args[:len(args)-1], "--read-only-tmpfs=false", image)
	podman.run(t, args...)
	inst := &instance{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	var logs string
	inst.key, logs = waitForKey(t, podman, name)
	// The example printed with the key works from the host, as the README
	// publishes the port: localhost, not the [::] the server listens on.
	if want := "curl -s http://localhost:8787/v1/feedback"; !strings.Contains(logs, want) {
		t.Errorf("the container's first log does not say %q:\n%s", want, logs)
	}
	waitReady(t, inst)

	c := inst.client(t, inst.key)
	id, err := c.Feedback.Create(context.Background(), client.FeedbackRequest{
		TraceID: "in-a-container", Value: 7, Metadata: &client.Metadata{"_user": "self-hoster"}})
	if err != nil {
		t.Fatalf("post feedback to the container: %v", err)
	}

	t.Run("RunsAsANumericNonRootUser", func(t *testing.T) {
		// top reads the running process, not the image's configuration.
		out := strings.Fields(podman.run(t, "top", name, "user"))
		if len(out) != 2 {
			t.Fatalf("podman top %s user: got %q, want a header and one process", name, out)
		}
		if uid, err := strconv.Atoi(out[1]); err != nil || uid == 0 {
			t.Errorf("feedbackd runs as user %q, want a numeric user other than 0", out[1])
		}
	})

	t.Run("OnlyDataIsWritable", func(t *testing.T) {
		// The feedback posted above was committed, so the server wrote
		// only where it could: check that this is only /data.
		got := strings.TrimSpace(podman.run(t, "inspect", "--format",
			"{{.HostConfig.ReadonlyRootfs}} {{range .Mounts}}{{.Destination}} {{end}}", name))
		if want := "true /data"; got != want {
			t.Errorf("read-only root and mounts: got %q, want %q", got, want)
		}
	})

	// readBack reads the feedback posted above with the first key, and
	// checks that the container's log holds keys keys: the server makes
	// no key on a database that has one.
	readBack := func(t *testing.T, keys int) {
		t.Helper()
		waitReady(t, inst)
		f, err := inst.client(t, inst.key).Feedback.Get(context.Background(), id)
		if err != nil {
			t.Fatalf("get the feedback with the first key: %v", err)
		}
		if f.TraceID != "in-a-container" || f.Value != 7 || f.Metadata["_user"] != "self-hoster" {
			t.Errorf("got %+v, want the feedback posted before", f)
		}
		if logs := podman.logs(t, name); len(keysIn(logs)) != keys {
			t.Errorf("got %d keys in the container's log, want %d:\n%s", len(keysIn(logs)), keys, logs)
		}
	}

	t.Run("StopAndStartKeepFeedbackAndKey", func(t *testing.T) {
		podman.run(t, "stop", name)
		// 0, not 137: feedbackd, the container's first process, shut down
		// on SIGTERM rather than being killed when stop's timeout ran out.
		if code := strings.TrimSpace(podman.run(t, "inspect", "--format", "{{.State.ExitCode}}", name)); code != "0" {
			t.Errorf("exit code after podman stop: got %s, want 0\n%s", code, podman.logs(t, name))
		}
		podman.run(t, "start", name)
		readBack(t, 1) // the log goes on from the first start
	})

	t.Run("ANewContainerOnTheVolumeKeepsFeedbackAndKey", func(t *testing.T) {
		// As an upgrade does: the old container goes, the volume stays.
		podman.run(t, "rm", "--force", name)
		podman.run(t, args...)
		readBack(t, 0)
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// keysIn returns the bootstrap keys printed in a container's log.
func keysIn(logs string) []string {
	var keys []string
	for _, line := range strings.Split(logs, "\n") {
		if m := keyLine.FindStringSubmatch(line); m != nil {
			keys = append(keys, m[1])
		}
	}
	return keys
}

// waitForKey waits until the container named name logs that it listens,
// and returns the one key it printed before, and the log.
func waitForKey(t *testing.T, podman podmanCLI, name string) (key, logs string) {
	t.Helper()
	waitFor(t, "the container logs that it listens", func() bool {
		running := strings.TrimSpace(podman.run(t, "inspect", "--format", "{{.State.Running}}", name))
		logs = podman.logs(t, name)
		if listeningLine.MatchString(logs) {
			return true
		}
		if running != "true" {
			t.Fatalf("the container stopped before it listened:\n%s", logs)
		}
		return false
	})
	keys := keysIn(logs)
	if len(keys) != 1 {
		t.Fatalf("got %d keys in the container's first log, want 1:\n%s", len(keys), logs)
	}
	return keys[0], logs
}

// waitReady waits until GET /readyz through the published port answers
// 200 {"status":"ok"}; it fails t on any other answer once one arrives.
func waitReady(t *testing.T, inst *instance) {
	t.Helper()
	var resp *http.Response
	waitFor(t, "the published port answers", func() bool {
		var err error
		resp, err = http.Get(inst.base + "/readyz")
		return err == nil
	})
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || body.String() != `{"status":"ok"}`+"\n" {
		t.Fatalf("GET /readyz: got %d %q", resp.StatusCode, body.String())
	}
}
