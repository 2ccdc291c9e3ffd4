//go:build tools

// Ollama is built from its own main package (the module root); this file only pins it in go.mod.
package tools

import _ "github.com/ollama/ollama"
