package web

import "strings"

// fieldView is one labelled input of an admin form, with its hint and
// its error, as the "field" template of _admin_more.html draws it.
type fieldView struct {
	Form                                *form
	ID, Name, Label                     string
	Hint, Type, Inputmode, Autocomplete string
	Placeholder                         string
}

// fieldOf builds a fieldView; opts are "key=value" pairs: hint, type,
// inputmode, autocomplete, placeholder and id (default: the name).
func fieldOf(f *form, name, label string, opts ...string) fieldView {
	v := fieldView{Form: f, ID: name, Name: name, Label: label, Type: "text"}
	for _, o := range opts {
		k, val, _ := strings.Cut(o, "=")
		switch k {
		case "hint":
			v.Hint = val
		case "type":
			v.Type = val
		case "inputmode":
			v.Inputmode = val
		case "autocomplete":
			v.Autocomplete = val
		case "placeholder":
			v.Placeholder = val
		case "id":
			v.ID = val
		}
	}
	return v
}

// Value is what the input shows: what was typed, never a password.
func (v fieldView) Value() string {
	if v.Type == "password" || v.Form == nil {
		return ""
	}
	return v.Form.Get(v.Name)
}

// Err is the error next to the input.
func (v fieldView) Err() string {
	if v.Form == nil {
		return ""
	}
	return v.Form.Err(v.Name)
}

// Describedby lists the IDs of the hint and the error.
func (v fieldView) Describedby() string {
	var ids []string
	if v.Hint != "" {
		ids = append(ids, v.ID+"-hint")
	}
	if v.Err() != "" {
		ids = append(ids, v.ID+"-error")
	}
	return strings.Join(ids, " ")
}
