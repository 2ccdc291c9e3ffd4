// Package shim exposes the upstream provider's SDKv2 provider. Its import path sits under the
// upstream module's path, which is what lets Go allow the import of upstream's internal package.
package shim

import (
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/terraform-providers/terraform-provider-docker/internal/provider"
)

// NewProvider returns the SDKv2 half of kreuzwerker's provider: every resource llmfleet uses
// (container, image, network, volume) lives there; the framework half holds only compose resources.
func NewProvider(version string) *schema.Provider {
	return provider.New(version)()
}
