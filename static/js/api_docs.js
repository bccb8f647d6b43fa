// The API reference: Swagger UI (from node_modules) over Ferry's own OpenAPI document.
const node = document.getElementById("swagger-ui");
window.SwaggerUIBundle({ url: node.dataset.url, domNode: node, deepLinking: true,
  supportedSubmitMethods: [] });
