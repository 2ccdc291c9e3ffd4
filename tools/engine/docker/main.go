// pulumi-resource-docker for llmfleet's engine tests: kreuzwerker's Terraform provider behind
// Pulumi's Terraform bridge, mapped to the resource tokens and field names of the pulumi-docker 5.x
// Python SDK. pulumi-docker's own provider module is not on the Go module proxy, so this restates
// the part of its provider definition that the resources llmfleet uses depend on.
package main

import (
	"context"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
	"github.com/terraform-providers/terraform-provider-docker/shim"
)

// version is stamped at build time (-X main.version=...); the SDK's plugin version plus a tag that
// says whose build this is.
var version = ""

func providerInfo() tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:       shimv2.NewProvider(shim.NewProvider(version)),
		Name:    "docker",
		Version: version,
		Config: map[string]*tfbridge.SchemaInfo{
			"host": {Default: &tfbridge.DefaultInfo{
				EnvVars: []string{"DOCKER_HOST"},
				ComputeDefault: func(context.Context, tfbridge.ComputeDefaultOptions) (any, error) {
					return "unix:///var/run/docker.sock", nil
				},
			}},
			"registry_auth": {Name: "registryAuth", MaxItemsOne: tfbridge.False()},
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			// Replacing a container deletes the old one first unless the program says otherwise:
			// pulumi-docker's default, which llmfleet's components override only for the gateway.
			"docker_container": {
				Tok:                 "docker:index/container:Container",
				DeleteBeforeReplace: true,
				Fields: map[string]*tfbridge.SchemaInfo{
					"command":           {Name: "command"},
					"networks_advanced": {Name: "networksAdvanced"},
				},
			},
			"docker_image":   {Tok: "docker:index/remoteImage:RemoteImage", Fields: map[string]*tfbridge.SchemaInfo{"name": {Name: "name"}}},
			"docker_network": {Tok: "docker:index/network:Network"},
			"docker_volume":  {Tok: "docker:index/volume:Volume"},
		},
	}
	// Every other upstream resource and data source gets the standard token, as pulumi-docker does.
	info.MustComputeTokens(tokens.SingleModule("docker_", "index", tokens.MakeStandard("docker")))
	// Unnamed containers, networks and volumes get "<resource name>-<random>", as in pulumi-docker.
	info.SetAutonaming(255, "-")
	return info
}

func main() {
	schema := []byte(`{"name":"docker","version":"` + version + `"}`)
	tfbridge.Main("docker", version, providerInfo(), schema)
}
