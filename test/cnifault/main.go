// Command cnifault is a CNI plugin for tests: chained last, it passes the
// previous result through, unless a control file tells it to fail or hang.
// In its config, "controlDir" names the directory; the files are
// fail-ADD, fail-DEL, hang-ADD and hang-DEL. Every call is logged to
// controlDir/calls as "<COMMAND> <container ID> <netns>".
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

type conf struct {
	CNIVersion string          `json:"cniVersion"`
	ControlDir string          `json:"controlDir"`
	PrevResult json.RawMessage `json:"prevResult"`
}

func main() {
	cmd := os.Getenv("CNI_COMMAND")
	if cmd == "VERSION" {
		fmt.Print(`{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}`)
		return
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(1, "read stdin: "+err.Error())
	}
	var c conf
	if err := json.Unmarshal(in, &c); err != nil {
		fail(6, "decode config: "+err.Error())
	}
	if c.ControlDir != "" {
		if f, err := os.OpenFile(filepath.Join(c.ControlDir, "calls"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s %s %s\n", cmd, os.Getenv("CNI_CONTAINERID"), os.Getenv("CNI_NETNS"))
			f.Close()
		}
		// Hang while the file exists, so a test can release the plugin.
		for exists(filepath.Join(c.ControlDir, "hang-"+cmd)) {
			time.Sleep(50 * time.Millisecond)
		}
		if exists(filepath.Join(c.ControlDir, "fail-"+cmd)) {
			fail(11, "cnifault: told to fail "+cmd)
		}
	}
	switch cmd {
	case "ADD":
		if len(c.PrevResult) > 0 {
			os.Stdout.Write(c.PrevResult)
			return
		}
		fmt.Printf(`{"cniVersion":%q}`, c.CNIVersion)
	case "CHECK", "DEL", "GC", "STATUS":
	default:
		fail(4, "unknown CNI_COMMAND "+cmd)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func fail(code int, msg string) {
	b, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "code": code, "msg": msg})
	os.Stdout.Write(b)
	os.Exit(1)
}
