package hostconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/provider"
	"lobby/internal/store"
)

// inFlight are states a queued job owns; a report does not overwrite them.
var inFlight = map[lobby.PowerState]bool{
	lobby.PowerCreating: true, lobby.PowerStarting: true,
	lobby.PowerStopping: true, lobby.PowerDeleting: true,
}

// Reconcile brings the store in line with what a host reports: desktops
// that appeared are recorded (outside any pool), changed power states are
// updated, and desktops that vanished are removed (or, while assigned,
// marked in error so an operator sees them). States owned by a queued job
// are left alone; the job sets them when it finishes.
func Reconcile(ctx context.Context, st store.Store, hostID string, reported []provider.Desktop, now time.Time) error {
	known := map[string]lobby.Desktop{}
	opt := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := st.ListDesktops(ctx, store.DesktopFilter{HostID: hostID}, opt)
		if err != nil {
			return fmt.Errorf("list desktops of host %s: %w", hostID, err)
		}
		for _, d := range page {
			known[d.Name] = d
		}
		if len(page) < opt.Limit {
			break
		}
		opt.After = page[len(page)-1].ID
	}
	for _, r := range reported {
		d, ok := known[r.Name]
		delete(known, r.Name)
		switch {
		case !ok:
			nd := &lobby.Desktop{Name: r.Name, HostID: hostID, Power: r.Power, ConsoleKind: r.ConsoleKind, ConsolePort: r.ConsolePort, Tags: []string{"discovered"}, Created: now}
			if err := st.CreateDesktop(ctx, nd); err != nil && !errors.Is(err, store.ErrConflict) {
				return fmt.Errorf("record discovered desktop %s: %w", r.Name, err)
			}
		case inFlight[d.Power]:
		case d.Power != r.Power || d.ConsolePort != r.ConsolePort:
			if err := st.SetDesktopPower(ctx, d.ID, r.Power, r.ConsolePort); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("update desktop %s: %w", r.Name, err)
			}
		}
	}
	for _, d := range known {
		if inFlight[d.Power] || d.Power == lobby.PowerError {
			continue
		}
		var err error
		if d.AssignedTo != "" {
			err = st.SetDesktopPower(ctx, d.ID, lobby.PowerError, 0)
		} else {
			err = st.DeleteDesktop(ctx, d.ID)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("desktop %s vanished from its host: %w", d.Name, err)
		}
	}
	return nil
}
