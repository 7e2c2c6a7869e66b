export { createUiRoutes, externalLinkAnnotation, EXTERNAL_LINK_ANNOTATION, UI_SECURITY_HEADERS, type UiDeps } from './routes.js';
