//go:build tools

// Docker Compose is built from its own main package (`cmd` in the module); this file only pins the
// module in go.mod, with every dependency in go.sum.
package tools

import _ "github.com/docker/compose/v5/cmd"
