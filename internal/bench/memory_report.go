package bench

import (
	"fmt"
	"io"
)

// Memory targets and references.
const (
	NodeTargetRSS = 100 << 20 // an idle node
	XvncIdlePss   = 21 << 20  // the reference for an idle Xvnc
)

// Print writes the report.
func (r *MemoryResult) Print(w io.Writer) {
	fmt.Fprintf(w, "lobby bench memory: an idle node, and one real desktop\n")
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	fmt.Fprintf(w, "Node:    %s, measured after %s idle\n", r.NodeHow, r.Config.Settle)
	t := &table{}
	t.add("idle node", "value")
	t.add("VmRSS", MiB(r.Node.RSS))
	t.add("VmHWM (peak, includes start-up and migrations)", MiB(r.Node.HWM))
	t.add("Pss", MiB(r.NodePss))
	t.write(w)
	fmt.Fprintf(w, "Target: idle node VmRSS <= %s: %s\n", MiB(NodeTargetRSS),
		verdict(r.Node.RSS <= NodeTargetRSS, fmt.Sprintf("%s is %.0f%% over", MiB(r.Node.RSS), 100*(float64(r.Node.RSS)/NodeTargetRSS-1))))
	if len(r.Desktop) == 0 {
		fmt.Fprintf(w, "Desktop: %s\n", r.DesktopNote)
		return
	}
	fmt.Fprintf(w, "Desktop: %s, measured after %s\n", r.DesktopNote, r.Config.Settle)
	t = &table{}
	t.add("process", "pid", "Pss", "VmRSS")
	for _, p := range r.Desktop {
		t.add(p.Name, fmt.Sprint(p.PID), MiB(p.Pss), MiB(p.RSS))
	}
	t.add("total", "", MiB(r.DesktopPss()), "")
	t.write(w)
	fmt.Fprintf(w, "Reference: an idle Xvnc alone is about %s Pss\n", MiB(XvncIdlePss))
	if len(r.Xvnc) == 0 {
		return
	}
	t = &table{}
	t.add("bare Xvnc (no session), args", "Pss", "anonymous", "file-backed (shared libraries)")
	for _, x := range r.Xvnc {
		t.add(x.Args, MiB(x.Pss), MiB(x.Anon), MiB(x.File))
	}
	t.write(w)
	fmt.Fprintf(w, "  (file-backed pages are shared: with several desktops each one's Pss carries only its share of them)\n")
}
