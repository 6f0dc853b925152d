#!/usr/bin/env ruby
# frozen_string_literal: true
#
# Grape as the oracle of route matching: which of the given routes match a path, and with which
# parameters, each route declared alone in an API set up as GitLab's API::API is (`format :json`
# with the JSON and text content types, so Grape appends an optional `(.:format)` to every route;
# a parameter may hold '.' only where a `[^/]+` requirement says so, as GitLab's do for project
# ids and name-like parameters; `format: false` where GitLab declares it, as on npm routes).
# One long-lived process; one JSON object per line on stdin, one answer per line on stdout.
#
#   in:  {"m": "GET", "p": "<API path>", "routes": [{"id": "...", "pattern": "...", "dots": ["id", ...], "format": false,
#          "requirements": {"ref_name": ".+"}}]}
#        ("format": false: declared `format: false`, as GitLab's npm routes are: no `.json` format;
#        "requirements": regular expressions that replace `[^/]+` for the parameters named)
#   out: {"matches": {"<route id>": {"<param>": "<decoded value>", ...}}, "grape": "1.6.2"}
#        (a route matches when its endpoint runs: Grape answers 406 before it for a format it
#        cannot write, as GitLab does)

require 'json'
require 'grape'
require 'rack/mock'
require_relative 'line_oracle'

APIS = {}

def api_for(method, route)
  APIS["#{method} #{route.fetch('id')}"] ||= begin
    requirements = route.fetch('dots').to_h { |name| [name.to_sym, %r{[^/]+}] }
    # GitLab's own requirements where they are wider than `[^/]+` (`ref_name: /.+/`).
    route.fetch('requirements', {}).each { |name, source| requirements[name.to_sym] = Regexp.new(source) }
    options = { requirements: requirements }
    options[:format] = false if route['format'] == false
    Class.new(Grape::API) do
      format :json
      content_type :json, 'application/json'
      content_type :txt, 'text/plain'
      # The parameters go back in a header: the body is written in whatever format the path asked for.
      send(method.downcase, route.fetch('pattern'), **options) do
        status 200
        header 'X-Oracle-Params', JSON.generate(params.to_h.reject { |name, _| name == 'format' })
        ''
      end
    end
  end
end

def answer(request)
  method = request.fetch('m')
  matches = {}
  request.fetch('routes').each do |route|
    status, headers, _body = api_for(method, route).call(Rack::MockRequest.env_for(request.fetch('p'), method: method))
    # Only an endpoint that ran answers 200 with the header (a format Grape cannot write is 406).
    next unless status == 200 && headers.key?('X-Oracle-Params')

    matches[route.fetch('id')] = JSON.parse(headers.fetch('X-Oracle-Params'))
  end
  { 'matches' => matches, 'grape' => Grape::VERSION }
end

serve_lines { |request| answer(request) }
