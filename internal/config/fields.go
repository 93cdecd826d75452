package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// fieldWalker checks a decoded JSON document against a Go type field by
// field. encoding/json alone is too lenient and too vague for a config file:
// it matches keys case-insensitively, and its errors from custom decoders
// (a bad duration, say) do not say which field they came from. Walking the
// document lets every problem name its JSON path, and records which fields
// the user actually wrote.
type fieldWalker struct {
	set  []string // JSON paths of the fields present in the document
	errs []error  // one per problem, each naming its path
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// walk checks raw (a value decoded into any, with json.Number for numbers)
// against type t at path. record says whether fields found here count as
// set: inside lists and maps they do not, as the whole list or map is the
// field the user set.
func (w *fieldWalker) walk(path string, raw any, t reflect.Type, record bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if raw == nil {
		return // null is the same as leaving the field out
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		w.leaf(path, raw, t)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok {
			w.leaf(path, raw, t)
			return
		}
		fields := jsonFields(t)
		for _, key := range sortedKeys(obj) {
			p := joinPath(path, key)
			f, ok := fields[key]
			if !ok {
				w.errs = append(w.errs, fmt.Errorf("field %q: unknown field", p))
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			_, isObj := obj[key].(map[string]any)
			nested := ft.Kind() == reflect.Struct && isObj && !reflect.PointerTo(ft).Implements(jsonUnmarshaler)
			if record && obj[key] != nil && !nested {
				w.set = append(w.set, p)
			}
			w.walk(p, obj[key], f.Type, record && nested)
		}
	case reflect.Slice, reflect.Array:
		list, ok := raw.([]any)
		if !ok {
			w.leaf(path, raw, t)
			return
		}
		for i, v := range list {
			w.walk(fmt.Sprintf("%s[%d]", path, i), v, t.Elem(), false)
		}
	case reflect.Map:
		obj, ok := raw.(map[string]any)
		if !ok || t.Key().Kind() != reflect.String {
			w.leaf(path, raw, t)
			return
		}
		for _, key := range sortedKeys(obj) {
			w.walk(joinPath(path, key), obj[key], t.Elem(), false)
		}
	default:
		w.leaf(path, raw, t)
	}
}

// leaf checks that raw decodes into a value of type t.
func (w *fieldWalker) leaf(path string, raw any, t reflect.Type) {
	data, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(data, reflect.New(t).Interface())
	}
	if err != nil {
		if typeErr := (*json.UnmarshalTypeError)(nil); errors.As(err, &typeErr) {
			err = fmt.Errorf("cannot use %s as %s", typeErr.Value, typeErr.Type)
		}
		w.errs = append(w.errs, fmt.Errorf("field %q: %w", path, err))
	}
}

// jsonFields maps the JSON names of t's fields to the fields, flattening
// embedded structs the way encoding/json does (TypeMeta is inlined this way).
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					fields[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f
	}
	return fields
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
