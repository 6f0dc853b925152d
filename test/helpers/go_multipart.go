// The oracle of how Workhorse reads a multipart body: Go's mime/multipart, parts taken with
// NextPart() as workhorse/internal/upload/rewrite.go takes them (a quoted-printable part is
// decoded and its Content-Transfer-Encoding hidden), each field's name and value as Workhorse
// writes them again for Rails. Reads a JSON array of {"boundary", "body" (base64)} on stdin and
// writes a JSON array of answers: {"parts": [{"name", "file", "value" (base64)}]} or {"error"}.
package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"os"
	"strings"
)

type request struct {
	Boundary string `json:"boundary"`
	Body     string `json:"body"`
}

type part struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Value string `json:"value"`
}

type answer struct {
	Parts []part `json:"parts"`
	Error string `json:"error,omitempty"`
}

func read(req request) answer {
	body, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return answer{Error: err.Error()}
	}
	r := multipart.NewReader(strings.NewReader(string(body)), req.Boundary)
	parts := []part{}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return answer{Parts: parts}
		}
		if err != nil {
			return answer{Parts: parts, Error: err.Error()}
		}
		value, err := io.ReadAll(p)
		if err != nil {
			return answer{Parts: parts, Error: err.Error()}
		}
		parts = append(parts, part{Name: p.FormName(), File: p.FileName(), Value: base64.StdEncoding.EncodeToString(value)})
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
