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
#   in:  {"m": "PUT", "t": "<Content-Type or null>", "b": "<base64 body>"}
#   out: {"status": 200, "params": {"job_token": ["..."], ...}}  (the credential names' string leaves)

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
  status, _headers, body = JsonDefaultApi.call(env)
  text = +''
  body.each { |part| text << part }
  params = status < 300 ? JSON.parse(text).fetch('params') : {}
  found = CREDENTIAL_PARAMS.to_h { |name| [name, params.key?(name) ? leaves(params[name], []) : nil] }.compact
  { 'status' => status, 'params' => found, 'grape' => Grape::VERSION }
end

serve_lines { |request| answer(request) }
