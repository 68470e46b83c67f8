package health

import (
	"bytes"
	"embed"
	"html/template"
	"io"
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

// FileName is a name for the downloaded report.
func (r *Report) FileName() string {
	return "lobby-health-" + r.Generated.UTC().Format("20060102-150405") + ".html"
}
