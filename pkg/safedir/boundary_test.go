package safedir_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// descriptorCalls are the *at(2) calls that act on a name relative to a directory descriptor.
// Getting them right (O_NOFOLLOW, regular-file checks, exact modes) is this package's job.
var descriptorCalls = map[string]bool{
	"Openat": true, "Openat2": true, "Renameat": true, "Renameat2": true, "Unlinkat": true,
	"Mkdirat": true, "Mkfifoat": true, "Mknodat": true, "Fstatat": true, "Fchownat": true,
	"Fchmodat": true, "Linkat": true, "Symlinkat": true, "Readlinkat": true, "Faccessat": true,
	"Utimensat": true,
}

// Every descriptor-relative file operation lives in pkg/safedir: the security model is written
// once. A call to one of them anywhere else in the product (tests aside) fails this test.
func TestDescriptorRelativeCallsStayInSafedir(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	var offenders []string
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case ".git", "e2e", filepath.Join("pkg", "safedir"):
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && (x.Name == "unix" || x.Name == "syscall") && descriptorCalls[sel.Sel.Name] {
				offenders = append(offenders, fset.Position(sel.Pos()).String()+": "+x.Name+"."+sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, offenders, "descriptor-relative calls outside pkg/safedir: use a safedir.Dir method")
}
