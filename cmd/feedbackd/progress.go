package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// newProgress returns how import shows its progress on w: "bar" (a bar
// redrawn in place, with rate and time left), "lines" (a plain line every
// few seconds, for logs and CI), "off", or "auto": a bar when w is a
// terminal, lines otherwise. size is the input's size in bytes, -1 when
// unknown (a pipe), which makes the bar a spinner.
func newProgress(mode string, w io.Writer, size int64) (progress, error) {
	switch mode {
	case "auto":
		if isTerminal(w) {
			return newBarProgress(w, size), nil
		}
		return &lineProgress{w: w, size: size, every: 2 * time.Second, last: time.Now()}, nil
	case "bar":
		return newBarProgress(w, size), nil
	case "lines":
		return &lineProgress{w: w, size: size, every: 2 * time.Second, last: time.Now()}, nil
	case "off":
		return nil, nil
	}
	return nil, fmt.Errorf("--progress must be auto, bar, lines or off, not %q", mode)
}

// barProgress draws a progress bar over the input's bytes.
type barProgress struct {
	bar *progressbar.ProgressBar
	w   io.Writer
}

func newBarProgress(w io.Writer, size int64) *barProgress {
	return &barProgress{w: w, bar: progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("importing"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
	)}
}

func (p *barProgress) committed(stats importStats, read int64) {
	p.bar.Describe(fmt.Sprintf("%d rows", stats.imported+stats.present))
	_ = p.bar.Set64(read)
}

func (p *barProgress) done(stats importStats, err error) {
	if err == nil {
		_ = p.bar.Finish()
	} else {
		_ = p.bar.Exit()
	}
	fmt.Fprintln(p.w)
}

// lineProgress writes a line at most every so often: readable in a log,
// where a redrawn bar would be noise.
type lineProgress struct {
	w     io.Writer
	size  int64
	every time.Duration
	last  time.Time
}

func (p *lineProgress) committed(stats importStats, read int64) {
	if time.Since(p.last) < p.every {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "import: %d rows", stats.imported+stats.present)
	if stats.present > 0 {
		fmt.Fprintf(p.w, " (%d already present)", stats.present)
	}
	if p.size > 0 {
		fmt.Fprintf(p.w, ", %.0f%% of the input", 100*float64(read)/float64(p.size))
	}
	fmt.Fprintln(p.w)
}

func (p *lineProgress) done(importStats, error) {}
