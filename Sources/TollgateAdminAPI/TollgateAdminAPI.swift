// The admin API's types, server protocol and client are generated from admin/openapi.yaml
// (symlinked here as openapi.yaml) by swift-openapi-generator at build time.
// Edit the spec, never generated code.
