package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLandingScreenshots takes the documentation's screenshots of a running
// exporter's page (docs/img/landing.png, the top of the page with the
// causes; docs/img/landing-instances.png, the instance table), 1280 pixels
// wide, through the DevTools protocol: a plain --screenshot of a tall page
// may come out blank below the fold. It runs only when asked, on the demo:
//
//	make demo   # then, once a second cycle has run:
//	KERBEROS_LANDING_SCREENSHOT_URL=http://localhost:19088/ KERBEROS_LANDING_SCREENSHOT_DIR=docs/img \
//	  go test -count=1 -run '^TestLandingScreenshots$' -v ./cmd/kerberos_exporter/
//
// It checks what the screenshots are for: the causes first, a critical one
// first, nothing wider than the window, and no first-cycle notice.
func TestLandingScreenshots(t *testing.T) {
	url := os.Getenv("KERBEROS_LANDING_SCREENSHOT_URL")
	if url == "" {
		t.Skip("set KERBEROS_LANDING_SCREENSHOT_URL to a running exporter's page to take the screenshots")
	}
	dir := os.Getenv("KERBEROS_LANDING_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	const width = 1280
	b := startBrowser(t, chromiumBinary(t), width, 900)
	b.navigate(url)

	var page struct {
		Sections        []string
		CauseSeverities []string
		New             int
		FirstCycle      bool
		ScrollWidth     float64
		Wide            []string
		Top             float64 // where the causes' heading sits
		InstancesTop    float64
		InstancesBottom float64
	}
	b.eval(`(() => {
		const box = sel => document.querySelector(sel).getBoundingClientRect();
		const wide = Array.from(document.querySelectorAll("body *"))
			.filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
			.map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""));
		return {
			Sections: Array.from(document.querySelectorAll("main > section")).map(s => s.id),
			CauseSeverities: Array.from(document.querySelectorAll("article.cause")).map(a => a.dataset.severity),
			New: document.querySelectorAll("article.cause .new").length,
			FirstCycle: /First collection since the exporter started/.test(document.body.textContent),
			ScrollWidth: document.documentElement.scrollWidth,
			Wide: wide.slice(0, 10),
			Top: box("#causes").top + scrollY,
			InstancesTop: box("#instances").top + scrollY,
			InstancesBottom: box("#instances").bottom + scrollY,
		};
	})()`, &page)
	if strings.Join(page.Sections, " ") != "summary causes instances fleet" {
		t.Errorf("sections %v, want the summary, the causes, the instances, the fleet-wide findings", page.Sections)
	}
	if len(page.CauseSeverities) == 0 || page.CauseSeverities[0] != "critical" {
		t.Errorf("the first cause is not critical: %v", page.CauseSeverities)
	}
	if page.ScrollWidth > width || len(page.Wide) > 0 {
		t.Errorf("the page is wider than %d px (%v px): %v", width, page.ScrollWidth, page.Wide)
	}
	if page.FirstCycle {
		t.Error("the page still shows the first cycle: wait for the second before taking the screenshots")
	}
	t.Logf("%d causes, %d marked new; causes at %.0f px, instances %.0f–%.0f px",
		len(page.CauseSeverities), page.New, page.Top, page.InstancesTop, page.InstancesBottom)

	shoot := func(name string, y, height float64) {
		var height2 float64
		b.eval("document.documentElement.scrollHeight", &height2)
		b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": int(height2), "deviceScaleFactor": 1, "mobile": false}, nil)
		var shot struct {
			Data []byte `json:"data"`
		}
		b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
			"clip": map[string]any{"x": 0, "y": y, "width": width, "height": height, "scale": 1}}, &shot)
		img, err := png.Decode(bytes.NewReader(shot.Data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := img.Bounds().Dx(); got != width {
			t.Errorf("%s is %d px wide, want %d", name, got, width)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, shot.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %dx%d, %d bytes", path, img.Bounds().Dx(), img.Bounds().Dy(), len(shot.Data))
	}
	shoot("landing.png", 0, 1900)
	shoot("landing-instances.png", page.InstancesTop-12, page.InstancesBottom-page.InstancesTop+24)
}
