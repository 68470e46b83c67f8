package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/postgres"
)

// HoldCheck is what the store says of a step's assignments, read once
// the clients stopped.
type HoldCheck struct {
	// Assigns and Releases are the desktop.assign and desktop.release
	// events of the audit log; Connects the connects answered 200 (warm-up
	// included), each of which wrote one desktop.assign.
	Assigns, Releases, Connects int
	// Twice counts desktops handed to someone while another person held
	// them: an assign event after an assign with no release between, in
	// the order the database numbered them. First describes the first.
	Twice int
	First string
	// Left are assignments still in the store; every client released.
	Left int
}

// err says what the check found wrong.
func (h HoldCheck) err() error {
	var errs []error
	if h.Twice > 0 {
		errs = append(errs, fmt.Errorf("%d times a desktop was handed to someone while another held it; the first: %s", h.Twice, h.First))
	}
	if h.Assigns != h.Connects {
		errs = append(errs, fmt.Errorf("the audit log has %d desktop.assign events for %d connects answered 200", h.Assigns, h.Connects))
	}
	if h.Left > 0 {
		errs = append(errs, fmt.Errorf("%d assignments are left in the store after every client released its desktop", h.Left))
	}
	return errors.Join(errs...)
}

// checkHolds reads the audit log and the assignments of the schema at
// dbURL. An assignment's INSERT and its audit event share a transaction,
// and a release deletes the assignment before its own event, so a desktop
// can only be assigned again after the release's event has its number
// (the database's sequence): per desktop, the events must alternate
// assign, release, assign... with the same person at both ends.
func checkHolds(ctx context.Context, dbURL string, connects int) (HoldCheck, error) {
	h := HoldCheck{Connects: connects}
	st, err := postgres.OpenReadOnly(ctx, dbURL, slog.New(slog.DiscardHandler))
	if err != nil {
		return h, err
	}
	defer st.Close()
	var events []lobby.AuditEvent
	for before := int64(0); ; {
		page, err := st.ListAudit(ctx, store.AuditFilter{Query: "desktop.", Before: before, Limit: store.MaxLimit})
		if err != nil {
			return h, err
		}
		for _, e := range page {
			if e.Action == "desktop.assign" || e.Action == "desktop.release" {
				events = append(events, e)
			}
		}
		if len(page) < store.MaxLimit {
			break
		}
		before = page[len(page)-1].ID
	}
	slices.Reverse(events) // oldest first
	h.count(events)
	as, err := st.ListAssignments(ctx, store.AssignmentFilter{})
	if err != nil {
		return h, err
	}
	h.Left = len(as)
	return h, nil
}

// count checks assign and release events, oldest first.
func (h *HoldCheck) count(events []lobby.AuditEvent) {
	holder := map[string]string{} // desktop ID → who holds it
	twice := func(format string, args ...any) {
		h.Twice++
		if h.First == "" {
			h.First = fmt.Sprintf(format, args...)
		}
	}
	for _, e := range events {
		who, held := holder[e.Target]
		switch e.Action {
		case "desktop.assign":
			h.Assigns++
			if held {
				twice("desktop %s given to %s (event %d) while %s held it", e.Target, e.Actor, e.ID, who)
			}
			holder[e.Target] = e.Actor
		case "desktop.release":
			h.Releases++
			if held && who != e.Actor {
				twice("desktop %s released by %s (event %d) while %s held it", e.Target, e.Actor, e.ID, who)
			}
			delete(holder, e.Target)
		}
	}
}
