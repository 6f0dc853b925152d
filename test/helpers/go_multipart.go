// The oracle of how Workhorse reads a multipart body: Go's mime/multipart, parts taken with
// NextPart() as workhorse/internal/upload/rewrite.go takes them (a quoted-printable part is
// decoded and its Content-Transfer-Encoding hidden), each field's name (mime.ParseMediaType's,
// which Workhorse writes again as the part's Content-Disposition) and value as Workhorse writes
// them again for Rails. Reads a JSON array of {"boundary", "body" (base64)} on stdin and
// writes a JSON array of answers: {"parts": [{"name", "file", "value" (base64)}]} or {"error"}.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

type request struct {
	Boundary string `json:"boundary"`
	Body     string `json:"body"`
	// When set, the boundary is the one Go reads from this Content-Type, as net/http's
	// MultipartReader() (Workhorse's) reads it.
	ContentType string `json:"contentType,omitempty"`
}

type part struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Value string `json:"value"`
}

type answer struct {
	Parts []part `json:"parts"`
	// The body Workhorse hands Rails (base64): each field part it keeps, its Content-Disposition
	// written again as Go reads it, and in place of each file part the fields Workhorse writes for
	// it, under the same boundary. Empty when Go raised an error.
	Rewritten string `json:"rewritten"`
	// With a Content-Type: the boundary Go read from it, where MultipartReader() took it.
	Boundary string `json:"boundary,omitempty"`
	Error    string `json:"error,omitempty"`
}

func read(req request) answer {
	body, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return answer{Error: err.Error()}
	}
	var r *multipart.Reader
	if req.ContentType != "" {
		// As Workhorse takes the body (rewrite.go): net/http's MultipartReader(), which reads a
		// Content-Type Go's mime.ParseMediaType gives as multipart/form-data or multipart/mixed;
		// any other is http.ErrNotMultipart, and Workhorse passes the body to Rails unread.
		hr, err := http.NewRequest("POST", "http://workhorse/", strings.NewReader(string(body)))
		if err != nil {
			return answer{Error: err.Error()}
		}
		hr.Header.Set("Content-Type", req.ContentType)
		if r, err = hr.MultipartReader(); err != nil {
			return answer{Error: err.Error()}
		}
		_, params, _ := mime.ParseMediaType(req.ContentType)
		req.Boundary = params["boundary"]
	} else {
		r = multipart.NewReader(strings.NewReader(string(body)), req.Boundary)
	}
	parts := []part{}
	var out bytes.Buffer
	w := multipart.NewWriter(&out)
	if err := w.SetBoundary(req.Boundary); err != nil {
		// A boundary Go's writer refuses (over 70 bytes...) is still the one its reader takes.
		return answer{Boundary: req.Boundary, Error: err.Error()}
	}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			if err := w.Close(); err != nil {
				return answer{Parts: parts, Error: err.Error()}
			}
			return answer{Parts: parts, Rewritten: base64.StdEncoding.EncodeToString(out.Bytes()), Boundary: req.Boundary}
		}
		if err != nil {
			return answer{Parts: parts, Boundary: req.Boundary, Error: err.Error()}
		}
		value, err := io.ReadAll(p)
		if err != nil {
			return answer{Parts: parts, Error: err.Error()}
		}
		// Workhorse (parseAndNormalizeContentDisposition) names a part with mime.ParseMediaType of its
		// first Content-Disposition, whatever the disposition type, drops a part without a name and
		// writes the others again under that name; older versions took FormName(), which is "" for
		// a type other than form-data. The name read either way: a credential in either counts.
		_, params, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		name, file := params["name"], params["filename"]
		if name == "" {
			name = p.FormName()
		}
		if file == "" {
			file = p.FileName()
		}
		parts = append(parts, part{Name: name, File: file, Value: base64.StdEncoding.EncodeToString(value)})
		// rewrite.go: parseAndNormalizeContentDisposition, then copyPart for a named field.
		mediaType, params, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
		p.Header.Set("Content-Disposition", mime.FormatMediaType(mediaType, params))
		if params["name"] != "" && params["filename"] == "" {
			np, err := w.CreatePart(p.Header)
			if err != nil {
				return answer{Parts: parts, Error: err.Error()}
			}
			np.Write(value)
		} else if params["name"] != "" {
			// handleFilePart: the file is stored, and GitLabFinalizeFields(name) written in its place
			// with WriteField, `<name>.name` holding the file's base name. Go ranges over that map in
			// a random order and Rack keeps the last of a name: `.name` is written last here.
			base := filepath.Base(p.FileName())
			if strings.Contains(base, "/") || base == "." || base == ".." {
				return answer{Parts: parts, Error: "illegal filename"}
			}
			for _, key := range []string{"path", "remote_url", "remote_id", "size", "upload_duration", "md5", "sha1", "sha256", "sha512", "gitlab-workhorse-upload", "name"} {
				field := map[string]string{"name": base, "path": "/var/opt/gitlab/uploads/tmp/upload", "size": strconv.Itoa(len(value))}[key]
				if err := w.WriteField(params["name"]+"."+key, field); err != nil {
					return answer{Parts: parts, Error: err.Error()}
				}
			}
		}
	}
}

func main() {
	var reqs []request
	if err := json.NewDecoder(os.Stdin).Decode(&reqs); err != nil {
		panic(err)
	}
	out := make([]answer, len(reqs))
	for i, req := range reqs {
		out[i] = read(req)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
