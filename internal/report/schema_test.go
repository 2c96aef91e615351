package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

const schemaFile = "../../docs/check-report.schema.json"

// TestJSONConformsToSchema: the real output of WriteJSON, for a full
// report, a pending one and one with first-seen times, conforms to the
// documented JSON Schema.
func TestJSONConformsToSchema(t *testing.T) {
	schema := loadSchema(t)
	full := sample()
	seen := sample()
	for i := range seen.Causes {
		seen.Causes[i].FirstSeen = time.Date(2024, 4, 30, 8, 0, 0, 0, time.UTC)
	}
	seen.Groups[1].Findings[0].FirstSeen = time.Date(2024, 4, 30, 8, 0, 0, 0, time.UTC)
	for name, r := range map[string]*Report{
		"full": full, "first seen": seen,
		"pending": Pending(&config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}}}),
		"empty":   New(nil, nil, nil, time.Unix(0, 0)),
	} {
		var b bytes.Buffer
		if err := r.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		for _, problem := range validate(schema, schema, doc, "$") {
			t.Errorf("%s report: %s", name, problem)
		}
	}
}

// TestSchemaValidatorRejects: the validator does find what the schema
// forbids, so that the test above can fail.
func TestSchemaValidatorRejects(t *testing.T) {
	schema := loadSchema(t)
	var b bytes.Buffer
	if err := sample().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(map[string]any){
		"unknown field":     func(d map[string]any) { d["extra"] = 1 },
		"missing causes":    func(d map[string]any) { delete(d, "causes") },
		"bad severity":      func(d map[string]any) { d["causes"].([]any)[0].(map[string]any)["severity"] = "fatal" },
		"count as a string": func(d map[string]any) { d["causes"].([]any)[0].(map[string]any)["affected_count"] = "2" },
	} {
		var doc map[string]any
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		mutate(doc)
		if problems := validate(schema, schema, doc, "$"); len(problems) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestSchemaDocumented: every property the schema names is described in a
// table row of docs/check-json.md.
func TestSchemaDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/check-json.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for name := range props {
					if !strings.Contains(string(doc), "| `"+name+"` |") {
						t.Errorf("docs/check-json.md does not describe %q", name)
					}
				}
			}
			for _, sub := range v {
				walk(sub)
			}
		case []any:
			for _, sub := range v {
				walk(sub)
			}
		}
	}
	walk(loadSchema(t))
}

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	return schema
}

// validate checks v against the subset of JSON Schema the report's schema
// uses: $ref to #/$defs, type, enum, required, properties,
// additionalProperties false, items and minimum. Annotations (format,
// description, title) are not checked.
func validate(root, s map[string]any, v any, at string) []string {
	if ref, ok := s["$ref"].(string); ok {
		name, found := strings.CutPrefix(ref, "#/$defs/")
		def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
		if !found || !ok {
			return []string{fmt.Sprintf("%s: unresolvable $ref %q", at, ref)}
		}
		return validate(root, def, v, at)
	}
	var problems []string
	if typ, ok := s["type"].(string); ok && !hasType(typ, v) {
		return []string{fmt.Sprintf("%s: %T is not %s", at, v, typ)}
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == v
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
		}
	}
	if min, ok := s["minimum"].(float64); ok {
		if n, isNum := v.(float64); isNum && n < min {
			problems = append(problems, fmt.Sprintf("%s: %v is below %v", at, n, min))
		}
	}
	if obj, ok := v.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		for _, r := range s["required"].([]any) {
			if _, ok := obj[r.(string)]; !ok {
				problems = append(problems, fmt.Sprintf("%s: %s is required", at, r))
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub, ok := props[k].(map[string]any)
			if !ok {
				if s["additionalProperties"] == false {
					problems = append(problems, fmt.Sprintf("%s: %s is not allowed", at, k))
				}
				continue
			}
			problems = append(problems, validate(root, sub, obj[k], at+"."+k)...)
		}
	}
	if arr, ok := v.([]any); ok {
		if items, ok := s["items"].(map[string]any); ok {
			for i, e := range arr {
				problems = append(problems, validate(root, items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return problems
}

func hasType(typ string, v any) bool {
	switch typ {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		n, ok := v.(float64)
		return ok && n == float64(int64(n))
	}
	return false
}
