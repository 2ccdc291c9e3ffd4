//go:build tools

// The Pulumi CLI is built from pkg's own main package; this file only pins it in go.mod.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
