// Package enumtest lets mapping tests find every value of a domain enum from the source, so that a state
// added to the domain and forgotten in an adapter's mapping fails a test instead of becoming a zero value
// on the wire.
package enumtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// StringConsts returns the values of the string constants declared with type typeName (as in
// `StatusPending Status = "pending"`) in the non-test Go files of the package in dir, sorted. It fails the
// test if there are none, which catches a renamed type or a wrong directory.
func StringConsts(t testing.TB, dir, typeName string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatalf("enumtest: list %s: %v", dir, err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("enumtest: parse %s: %v", name, err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typeName {
					continue
				}
				for _, v := range vs.Values {
					lit, ok := v.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("enumtest: a %s constant in %s is not a string literal", typeName, name)
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatalf("enumtest: %s: %v", name, err)
					}
					out = append(out, s)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("enumtest: no constants of type %s in %s", typeName, dir)
	}
	slices.Sort(out)
	return out
}
