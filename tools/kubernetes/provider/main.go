// The pulumi-kubernetes provider, built from its Go module. Upstream's own main package embeds
// schema-embed.json and terraform-mapping-embed.json, which its Makefile generates and git ignores,
// so the module zip lacks them: tests/kubernetes_build.py writes both here, from the zip's
// schema.json (version set) and terraform-mapping.json, before it builds this package.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
