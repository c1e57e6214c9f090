// Package feedbackd is a self-hosted feedback service for LLM applications.
//
// The wire contract lives in openapi.yaml. Everything in gen/ and the
// generated part of client/ is produced from it by the pinned oapi-codegen
// (go.mod's tool directive); run `go generate ./...` after changing the spec
// and commit the spec and the generated code together.
package feedbackd

//go:generate go tool oapi-codegen -config oapi-codegen.yaml openapi.yaml
//go:generate go tool oapi-codegen -config client/oapi-codegen.yaml openapi.yaml
