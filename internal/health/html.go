package health

import (
	"bytes"
	"embed"
	"html/template"
	"io"
	"net/http"
)

//go:embed templates/report.html
var templates embed.FS

var reportHTML = template.Must(template.ParseFS(templates, "templates/report.html"))

// WriteHTML writes the report as one self-contained HTML page (its style
// inline), to keep or to send.
func (r *Report) WriteHTML(w io.Writer) error {
	var buf bytes.Buffer
	if err := reportHTML.Execute(&buf, r); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Download answers the report as an HTML file to keep or send (WriteHTML),
// named for when it was made.
func (r *Report) Download(w http.ResponseWriter) error {
	name := "lobby-health-" + r.Generated.UTC().Format("20060102-150405") + ".html"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	return r.WriteHTML(w)
}
