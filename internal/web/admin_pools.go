package web

import (
	"net/http"
	"net/url"
	"strconv"

	"lobby/internal/lobby"
	"lobby/internal/manage"
	"lobby/internal/store"
)

type poolRow struct {
	Pool   lobby.Pool
	Counts store.PoolCounts
}

func (s *Server) poolRows(r *http.Request) ([]poolRow, error) {
	pools, err := store.All(func(o store.ListOptions) ([]lobby.Pool, error) { return s.Store.ListPools(r.Context(), o) },
		func(p lobby.Pool) string { return p.ID })
	if err != nil {
		return nil, err
	}
	rows := make([]poolRow, 0, len(pools))
	for _, p := range pools {
		c, err := s.Store.PoolCounts(r.Context(), p.ID)
		if err != nil {
			return nil, err
		}
		rows = append(rows, poolRow{Pool: p, Counts: c})
	}
	return rows, nil
}

func (s *Server) poolsPage(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.poolRows(r)
	if err != nil {
		return err
	}
	lq := listQueryOf(r, "name")
	itoa := strconv.Itoa
	p := sortPage(rows, lq, map[string]func(poolRow) string{
		"name":     func(p poolRow) string { return p.Pool.Name },
		"total":    func(p poolRow) string { return itoa(p.Counts.Total) },
		"free":     func(p poolRow) string { return itoa(p.Counts.Free) },
		"assigned": func(p poolRow) string { return itoa(p.Counts.Assigned) },
		"min":      func(p poolRow) string { return itoa(p.Pool.MinSize) },
		"max":      func(p poolRow) string { return itoa(p.Pool.MaxSize) },
	})
	return s.render(w, r, http.StatusOK, "admin_pools", "Pools", p)
}

type poolFormData struct {
	Form   *form
	Pool   *lobby.Pool // nil when creating
	Counts store.PoolCounts
	Desks  []lobby.Desktop
}

func poolFormOf(p *lobby.Pool) *form {
	f := newForm()
	in := manage.PoolInputOf(p)
	f.Values.Set("name", in.Name)
	f.Values.Set("min_size", strconv.Itoa(in.MinSize))
	f.Values.Set("max_size", strconv.Itoa(in.MaxSize))
	f.Values.Set("min_free", strconv.Itoa(in.MinFree))
	f.Values.Set("name_pattern", in.NamePattern)
	f.Values.Set("template", in.Template)
	return f
}

func (s *Server) poolNew(w http.ResponseWriter, r *http.Request) error {
	f := newForm()
	f.Values = url.Values{"min_size": {"0"}, "max_size": {"10"}, "min_free": {"1"}, "template": {"default"}}
	return s.render(w, r, http.StatusOK, "admin_pool", "New pool", poolFormData{Form: f})
}

// poolInputOf reads the pool form; number errors are filed on f.
func poolInputOf(r *http.Request, f *form) manage.PoolInput {
	return manage.PoolInput{
		Name:        r.PostFormValue("name"),
		MinSize:     formInt(r, f, "min_size"),
		MaxSize:     formInt(r, f, "max_size"),
		MinFree:     formInt(r, f, "min_free"),
		NamePattern: r.PostFormValue("name_pattern"),
		Template:    r.PostFormValue("template"),
	}
}

func (s *Server) poolCreate(w http.ResponseWriter, r *http.Request) error {
	f := formOf(r)
	in := poolInputOf(r, f)
	if !f.Failed() {
		p, err := s.Manage.CreatePool(r.Context(), s.actor(r), in)
		if err == nil {
			s.flash(w, r, "Pool "+p.Name+" created; its desktops are being provisioned.")
			http.Redirect(w, r, "/admin/pools/"+url.PathEscape(p.Name), http.StatusSeeOther)
			return nil
		}
		if !formError(err) {
			return err
		}
		f.Fail(err)
	}
	return s.render(w, r, http.StatusBadRequest, "admin_pool", "New pool", poolFormData{Form: f})
}

// formError reports whether err belongs on the form (bad input, a name
// taken) rather than on an error page.
func formError(err error) bool {
	k := lobby.ErrorKind(err)
	return k == lobby.KindInvalid || k == lobby.KindConflict
}

func (s *Server) poolData(r *http.Request, p *lobby.Pool, f *form) (poolFormData, error) {
	c, err := s.Store.PoolCounts(r.Context(), p.ID)
	if err != nil {
		return poolFormData{}, err
	}
	ds, err := s.Store.ListDesktops(r.Context(), store.DesktopFilter{PoolID: p.ID}, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		return poolFormData{}, err
	}
	return poolFormData{Form: f, Pool: p, Counts: c, Desks: ds}, nil
}

func (s *Server) poolPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.Manage.Pool(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	d, err := s.poolData(r, p, poolFormOf(p))
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "admin_pool", "Pool "+p.Name, d)
}

func (s *Server) poolUpdate(w http.ResponseWriter, r *http.Request) error {
	f := formOf(r)
	in := poolInputOf(r, f)
	ref := r.PathValue("ref")
	if !f.Failed() {
		p, err := s.Manage.UpdatePool(r.Context(), s.actor(r), ref, func(cur *manage.PoolInput) error {
			*cur = in
			return nil
		})
		if err == nil {
			s.flash(w, r, "Pool "+p.Name+" saved.")
			http.Redirect(w, r, "/admin/pools/"+url.PathEscape(p.Name), http.StatusSeeOther)
			return nil
		}
		if !formError(err) {
			return err
		}
		f.Fail(err)
	}
	p, err := s.Manage.Pool(r.Context(), ref)
	if err != nil {
		return err
	}
	d, err := s.poolData(r, p, f)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusBadRequest, "admin_pool", "Pool "+p.Name, d)
}

func (s *Server) poolDelete(w http.ResponseWriter, r *http.Request) error {
	ref := r.PathValue("ref")
	if err := s.Manage.DeletePool(r.Context(), s.actor(r), ref); err != nil {
		return err
	}
	s.flash(w, r, "Pool "+ref+" deleted.")
	http.Redirect(w, r, "/admin/pools", http.StatusSeeOther)
	return nil
}
