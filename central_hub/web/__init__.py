"""The hub's web layer (Flask): the app factory (app), what views share (context), the
language of the pages (i18n), the sync and dashboard JSON APIs (api_*), the staff pages
(dashboard_pages, dashboard_fleet, call_centre_pages), FHIR (fhir_api), /metrics, the OpenAPI
document and the server (serving). The domain modules of central_hub import nothing from here.
"""
