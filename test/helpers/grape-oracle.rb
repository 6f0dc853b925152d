#!/usr/bin/env ruby
# frozen_string_literal: true
#
# Grape as the oracle: which parameters GitLab's Grape API reads from a request body. Grape's
# Formatter middleware parses a POST, PUT, PATCH or DELETE body itself when Rack does not (no
# form or multipart type), with the format of its media type, or the API's default format when
# there is none (Grape::Middleware::Formatter#read_rack_input). GitLab's NuGet, PyPI, Composer,
# Cargo, Terraform state and MLflow APIs declare `format :json` and `default_format :json`, and
# GitLab's bundle has MultiJson with Oj, which Grape's JSON parser then uses: as here.
# One long-lived process; one JSON object per line on stdin, one answer per line on stdout.
#
#   in:  {"m": "PUT", "t": "<Content-Type or null>", "b": "<base64 body>", "a": "<api, optional>"}
#   out: {"status": 200, "params": {"job_token": ["..."], ...}}  (the credential names' string leaves)
#
# `a` chooses the API: "json_default" (the default, above); "json" as GitLab's API::API is declared,
# `format :json` and its JSON content type, no default format (Grape then takes a body without a
# type as :txt, a format this API does not accept); "json_txt", the same with the text and binary
# content types some of GitLab's APIs add (Go proxy, Debian, Conan's `users` namespace, Maven,
# RubyGems), where a body without a type is text, which Grape parses no parameters from.

require 'json'
require 'base64'
require 'multi_json'
require 'oj'
require 'grape'
require 'rack/mock'
require_relative 'line_oracle'

CREDENTIAL_PARAMS = %w[job_token token access_token bearer_token private_token].freeze

# An API declared as GitLab's JSON-default APIs are: every body method answers its params.
class JsonDefaultApi < Grape::API
  format :json
  default_format :json
  %i[post put patch delete].each { |m| send(m, '/x') { { params: params.to_h } } }
end

# As GitLab's API::API: JSON, and no default format.
class JsonApi < Grape::API
  format :json
  content_type :json, 'application/json'
  %i[post put patch delete].each { |m| send(m, '/x') { { params: params.to_h } } }
end

# The same, with the text and binary content types some of GitLab's APIs declare.
class JsonTxtApi < Grape::API
  format :json
  content_type :json, 'application/json'
  content_type :txt, 'text/plain'
  content_type :binary, 'application/octet-stream'
  %i[post put patch delete].each { |m| send(m, '/x') { { params: params.to_h } } }
end

APIS = { 'json_default' => JsonDefaultApi, 'json' => JsonApi, 'json_txt' => JsonTxtApi }.freeze

def leaves(value, out)
  case value
  when String then out << value.dup.force_encoding(Encoding::UTF_8).scrub
  when Numeric, true then out << value.to_s
  when Array then value.each { |v| leaves(v, out) }
  when Hash then value.each_value { |v| leaves(v, out) }
  end
  out
end

def answer(request)
  env = Rack::MockRequest.env_for('/x', method: request.fetch('m'), input: Base64.strict_decode64(request.fetch('b')))
  env.delete('CONTENT_TYPE')
  env['CONTENT_TYPE'] = request['t'] unless request['t'].nil?
  status, _headers, body = APIS.fetch(request['a'] || 'json_default').call(env)
  text = +''
  body.each { |part| text << part }
  params = status < 300 ? JSON.parse(text).fetch('params') : {}
  found = CREDENTIAL_PARAMS.to_h { |name| [name, params.key?(name) ? leaves(params[name], []) : nil] }.compact
  { 'status' => status, 'params' => found, 'grape' => Grape::VERSION }
end

serve_lines { |request| answer(request) }
