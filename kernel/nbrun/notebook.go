package nbrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/detlab/detlab/kernel/wire"
)

// Notebook is an nbformat 4 notebook. Fields this package does not use are
// kept as they were read.
type Notebook struct {
	Cells         []*Cell        `json:"cells"`
	Metadata      map[string]any `json:"metadata"`
	NBFormat      int            `json:"nbformat"`
	NBFormatMinor int            `json:"nbformat_minor"`
}

// Cell is one notebook cell. Outputs and ExecutionCount belong to code cells only.
type Cell struct {
	ID             string
	CellType       string
	Metadata       map[string]any
	Source         string
	Outputs        []map[string]any
	ExecutionCount *int
	Attachments    map[string]any
}

// multiline is text that nbformat stores as a string or a list of lines.
type multiline string

func (m *multiline) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = multiline(s)
		return nil
	}
	var lines []string
	if err := json.Unmarshal(b, &lines); err != nil {
		return fmt.Errorf("nbrun: source is neither a string nor a list of strings")
	}
	*m = multiline(strings.Join(lines, ""))
	return nil
}

// lines splits s the way Jupyter stores multiline strings: a list of lines,
// each but the last ending in "\n".
func lines(s string) []string {
	out := []string{}
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

type cellJSON struct {
	ID             string           `json:"id,omitempty"`
	CellType       string           `json:"cell_type"`
	Metadata       map[string]any   `json:"metadata"`
	Source         multiline        `json:"source"`
	Outputs        []map[string]any `json:"outputs,omitempty"`
	ExecutionCount *int             `json:"execution_count,omitempty"`
	Attachments    map[string]any   `json:"attachments,omitempty"`
}

// UnmarshalJSON reads a cell.
func (c *Cell) UnmarshalJSON(b []byte) error {
	var j cellJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*c = Cell{ID: j.ID, CellType: j.CellType, Metadata: j.Metadata, Source: string(j.Source),
		Outputs: j.Outputs, ExecutionCount: j.ExecutionCount, Attachments: j.Attachments}
	return nil
}

// MarshalJSON writes a cell as nbformat 4.5 wants it: code cells always carry
// outputs and execution_count (null when not run); other cells carry neither.
func (c *Cell) MarshalJSON() ([]byte, error) {
	m := map[string]any{
		"id":        c.ID,
		"cell_type": c.CellType,
		"metadata":  orEmpty(c.Metadata),
		"source":    lines(c.Source),
	}
	if c.CellType == "code" {
		outs := c.Outputs
		if outs == nil {
			outs = []map[string]any{}
		}
		m["outputs"] = outs
		m["execution_count"] = c.ExecutionCount
	} else if c.Attachments != nil {
		m["attachments"] = c.Attachments
	}
	return json.Marshal(m)
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// Tags returns the cell's metadata.tags.
func (c *Cell) Tags() []string {
	raw, _ := c.Metadata["tags"].([]any)
	var tags []string
	for _, t := range raw {
		if s, ok := t.(string); ok {
			tags = append(tags, s)
		}
	}
	return tags
}

// HasTag reports whether the cell is tagged tag.
func (c *Cell) HasTag(tag string) bool {
	for _, t := range c.Tags() {
		if t == tag {
			return true
		}
	}
	return false
}

var validID = regexp.MustCompile(`^[a-zA-Z0-9-_]{1,64}$`)

// Parse reads an nbformat 4 notebook.
func Parse(b []byte) (*Notebook, error) {
	var nb Notebook
	if err := json.Unmarshal(b, &nb); err != nil {
		return nil, fmt.Errorf("nbrun: not a notebook: %w", err)
	}
	if nb.NBFormat != 4 {
		return nil, fmt.Errorf("nbrun: nbformat %d not supported (want 4)", nb.NBFormat)
	}
	for i, c := range nb.Cells {
		if c == nil {
			return nil, fmt.Errorf("nbrun: cell %d is null", i)
		}
		switch c.CellType {
		case "code", "markdown", "raw":
		default:
			return nil, fmt.Errorf("nbrun: cell %d: unknown cell_type %q", i, c.CellType)
		}
	}
	return &nb, nil
}

// ReadFile reads the notebook at path.
func ReadFile(path string) (*Notebook, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nbrun: %w", err)
	}
	nb, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return nb, nil
}

// Normalize upgrades the notebook to nbformat 4.5: every cell gets a unique
// valid id, and the metadata names the Go kernel and language.
func (nb *Notebook) Normalize() {
	if nb.NBFormatMinor < 5 {
		nb.NBFormatMinor = 5
	}
	nb.NBFormat = 4
	seen := map[string]bool{}
	for _, c := range nb.Cells {
		if !validID.MatchString(c.ID) || seen[c.ID] {
			c.ID = newCellID()
		}
		seen[c.ID] = true
	}
	if nb.Metadata == nil {
		nb.Metadata = map[string]any{}
	}
	if _, ok := nb.Metadata["kernelspec"]; !ok {
		nb.Metadata["kernelspec"] = map[string]any{"name": "detlab", "display_name": "Go (detlab)", "language": "go"}
	}
	nb.Metadata["language_info"] = languageInfo()
}

func newCellID() string { return strings.ReplaceAll(wire.NewID(), "-", "")[:8] }

// Marshal returns the notebook as indented JSON, as Jupyter writes it.
func (nb *Notebook) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(nb); err != nil {
		return nil, fmt.Errorf("nbrun: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteFile writes the notebook to path.
func (nb *Notebook) WriteFile(path string) error {
	b, err := nb.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("nbrun: %w", err)
	}
	return nil
}
