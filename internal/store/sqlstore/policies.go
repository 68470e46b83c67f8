package sqlstore

import (
	"context"
	"fmt"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

const policyCols = `id, name, pool_ids, usernames, group_names, max_desktops, mode, release_plan, power_plan, priority, created`

func scanPolicy(sc scanner) (*lobby.Policy, error) {
	var p lobby.Policy
	err := sc.Scan(&p.ID, &p.Name, stringsCol(&p.Pools), stringsCol(&p.Users), stringsCol(&p.Groups), &p.MaxDesktops,
		&p.Mode, jsonCol{&p.Release}, &p.PowerPlan, &p.Priority, timeCol{&p.Created})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func normalizePolicy(p *lobby.Policy) {
	for _, l := range []*[]string{&p.Pools, &p.Users, &p.Groups} {
		if *l == nil {
			*l = []string{}
		}
	}
}

// CreatePolicy inserts p, setting p.ID (when empty) and p.Created (when
// zero); ErrConflict when the name is taken. Pool IDs are not checked.
func (q *queries) CreatePolicy(ctx context.Context, p *lobby.Policy) error {
	if p.ID == "" {
		p.ID = lobby.NewID("pol")
	}
	p.Created = q.createdTime(p.Created)
	normalizePolicy(p)
	_, err := q.exec(ctx, `INSERT INTO policies (`+policyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.Name, jsonText(p.Pools), jsonText(p.Users), jsonText(p.Groups), p.MaxDesktops, string(p.Mode),
		jsonText(p.Release), string(p.PowerPlan), p.Priority, q.d.t(p.Created))
	if err != nil {
		return q.d.wrap(err, fmt.Sprintf("create policy %q", p.Name))
	}
	return nil
}

// GetPolicy returns the policy with the ID; ErrNotFound.
func (q *queries) GetPolicy(ctx context.Context, id string) (*lobby.Policy, error) {
	return get(ctx, q, fmt.Sprintf("policy %q", id), scanPolicy, `SELECT `+policyCols+` FROM policies WHERE id = ?`, id)
}

// GetPolicyByName returns the policy with the name; ErrNotFound.
func (q *queries) GetPolicyByName(ctx context.Context, name string) (*lobby.Policy, error) {
	return get(ctx, q, fmt.Sprintf("policy %q", name), scanPolicy, `SELECT `+policyCols+` FROM policies WHERE name = ?`, name)
}

// ListPolicies pages policies by ID.
func (q *queries) ListPolicies(ctx context.Context, opt store.ListOptions) ([]lobby.Policy, error) {
	after, limit := page(opt)
	return listLimit(ctx, q, "policies", scanPolicy,
		`SELECT `+policyCols+` FROM policies WHERE id > ? ORDER BY id`, limit, after)
}

// UpdatePolicy writes every field of p but ID and Created; ErrNotFound, or
// ErrConflict when the new name is taken.
func (q *queries) UpdatePolicy(ctx context.Context, p *lobby.Policy) error {
	normalizePolicy(p)
	return q.execOne(ctx, fmt.Sprintf("update policy %q", p.ID),
		`UPDATE policies SET name = ?, pool_ids = ?, usernames = ?, group_names = ?, max_desktops = ?, mode = ?,
			release_plan = ?, power_plan = ?, priority = ? WHERE id = ?`,
		p.Name, jsonText(p.Pools), jsonText(p.Users), jsonText(p.Groups), p.MaxDesktops, string(p.Mode),
		jsonText(p.Release), string(p.PowerPlan), p.Priority, p.ID)
}

// DeletePolicy deletes the policy; assignments made under it keep their
// desktops and lose their PolicyID. ErrNotFound.
func (q *queries) DeletePolicy(ctx context.Context, id string) error {
	return q.execOne(ctx, fmt.Sprintf("delete policy %q", id), `DELETE FROM policies WHERE id = ?`, id)
}
