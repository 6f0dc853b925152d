#!/usr/bin/env ruby
# frozen_string_literal: true
#
# Rack as the oracle: what GitLab's Rails stack reads as credentials from a raw request.
# One long-lived process; one JSON object per line on stdin, one answer per line on stdout.
#
#   in:  {"m": "POST", "t": "/api/v4/...?a=b", "h": [["Name", "value"], ...], "b": "<base64 body>"}
#        (header values and the target are latin1: one character per byte)
#   out: {"method": "DELETE", "creds": [["param:job_token", "..."], ["basic:gitlab-ci-token", "..."], ...],
#         "errors": ["POST: ..."]}
#   With "p": true in, also "get" and "post": Rack::Request#GET and #POST as plain data
#   ({"params": {...}}, nil kept, an uploaded file as "(file)") or {"raised": "ErrorClass"}.
#
# The readings, each as the library GitLab runs does it:
# - headers as Puma hands them to Rack: `HTTP_` + upper case, '-' as '_', repeated lines of one
#   name joined with ", " (each line alone is read too: a proxy keeping the first or the last);
# - Rack::MethodOverride (rack/method_override.rb) applied: `method` is the routed method;
# - Rack::Request#GET and #POST (query, form and multipart bodies: rack/request.rb,
#   rack/query_parser.rb, rack/multipart/parser.rb), each read even when the other raises;
# - JSON bodies as Grape merges them into params: top-level members (Ruby's JSON keeps the last
#   of repeated keys);
# - HTTP Basic as ActionController::HttpAuthentication::Basic decodes it:
#   `authorization.to_s.split(" ", 2)`, scheme compared downcased, `Base64.decode64(param).split(":", 2)`;
#   and as TokenLocator's `http_basic_auth` reads it on routes that declare `authenticate_with`
#   (`user_name_and_password`, whatever the scheme, user and password both present): `basic-any:<user>`;
# - Bearer as Doorkeeper's from_bearer_authorization reads it: `/^Bearer /i`, removed with gsub;
# - Authorization as Gitlab::Jira::Middleware (lib/gitlab/jira/middleware.rb, in GitLab's Rails
#   middleware) hands it on: with a User-Agent starting "Jira DVCS Connector" in any case, its
#   first `token` replaced by `Bearer` (each line alone too).
# Parameter values are listed for job_token, token, access_token, bearer_token and
# private_token, every string leaf under them (`job_token[]=x` is ["x"]); uploaded files are not
# values. Nothing here decides what is a job token: the test does, from where a value was found.

require 'json'
require 'base64'
require 'stringio'
require 'rack'
require_relative 'line_oracle'

CREDENTIAL_PARAMS = %w[job_token token access_token bearer_token private_token].freeze
TOKEN_HEADERS = { 'HTTP_JOB_TOKEN' => 'job-token', 'HTTP_PRIVATE_TOKEN' => 'private-token',
                  'HTTP_DEPLOY_TOKEN' => 'deploy-token', 'HTTP_X_NUGET_APIKEY' => 'x-nuget-apikey' }.freeze
JSON_TYPES = %w[application/json text/x-json application/jsonrequest].freeze
NO_TEMPFILES = ->(_filename, _content_type) { StringIO.new(+'') }
APP = ->(_env) { [200, {}, []] }

def bytes(text)
  text.encode(Encoding::ISO_8859_1).force_encoding(Encoding::BINARY)
end

def text(value)
  value.to_s.b.force_encoding(Encoding::ISO_8859_1).encode(Encoding::UTF_8)
end

# Every string leaf of a parameter value; an uploaded file (a Hash with :tempfile) is none.
def leaves(value, out)
  case value
  when String then out << value
  when Array then value.each { |v| leaves(v, out) }
  when Hash then value.each_value { |v| leaves(v, out) } unless value.key?(:tempfile)
  end
  out
end

def params_credentials(params, where, creds)
  return unless params.is_a?(Hash)

  CREDENTIAL_PARAMS.each do |name|
    next unless params.key?(name)

    leaves(params[name], []).each { |v| creds << ["#{where}:#{name}", text(v)] }
  end
end

# ActiveSupport's `present?` on a string (TokenLocator asks it of both parts).
def present?(value)
  !value.nil? && !value.match?(/\A[[:space:]]*\z/)
end

def authorization_credentials(value, creds)
  scheme, param = value.to_s.split(' ', 2)
  user, password = Base64.decode64(param || '').split(':', 2)
  if scheme.to_s.downcase == 'basic'
    creds << ["basic:#{text(user)}", text(password)] unless password.nil?
    creds << ['basic-user', text(user)] unless user.nil?
  end
  creds << ["basic-any:#{text(user)}", text(password)] if present?(user) && present?(password)
  creds << ['bearer', text(value.gsub(/^Bearer /i, ''))] if value =~ /^Bearer /i
end

# Parameters as plain data for JSON: strings as text, nil kept, an uploaded file as "(file)".
def plain(value)
  case value
  when String then text(value)
  when Array then value.map { |v| plain(v) }
  when Hash then value.key?(:tempfile) ? '(file)' : value.to_h { |k, v| [text(k), plain(v)] }
  else value
  end
end

def reading(request, which)
  { 'params' => plain(request.public_send(which)) }
rescue StandardError => e
  { 'raised' => e.class.name }
end

def answer(request)
  want_params = request['p']
  method = request.fetch('m')
  target = bytes(request.fetch('t'))
  path, query = target.split('?', 2)
  body = Base64.strict_decode64(request.fetch('b'))
  lines = Hash.new { |h, k| h[k] = [] }
  request.fetch('h').each do |name, value|
    key = bytes(name).upcase.tr('-', '_')
    key = "HTTP_#{key}" unless %w[CONTENT_TYPE CONTENT_LENGTH].include?(key)
    lines[key] << bytes(value)
  end

  env = {
    'REQUEST_METHOD' => method, 'SCRIPT_NAME' => '', 'PATH_INFO' => path, 'QUERY_STRING' => query.to_s,
    'SERVER_NAME' => 'gitlab.example', 'SERVER_PORT' => '80', 'rack.url_scheme' => 'http',
    'rack.input' => StringIO.new(body), 'rack.errors' => StringIO.new,
    Rack::RACK_MULTIPART_TEMPFILE_FACTORY => NO_TEMPFILES
  }
  lines.each { |key, values| env[key] = values.join(', ') }

  errors = []
  Rack::MethodOverride.new(APP).call(env)
  request = Rack::Request.new(env)
  creds = []
  begin
    params_credentials(request.GET, 'query', creds)
  rescue StandardError => e
    errors << "GET: #{e.class}"
  end
  begin
    params_credentials(request.POST, 'body', creds)
  rescue StandardError => e
    errors << "POST: #{e.class}"
  end
  if JSON_TYPES.include?(request.media_type) || request.media_type.to_s.end_with?('+json')
    begin
      params_credentials(JSON.parse(body), 'json', creds)
    rescue JSON::ParserError => e
      errors << "JSON: #{e.class}"
    end
  end

  TOKEN_HEADERS.each do |key, where|
    values = lines[key]
    next if values.empty?

    ([env[key]] + values).uniq.each { |v| creds << ["header:#{where}", text(v)] }
  end
  auth = lines['HTTP_AUTHORIZATION']
  if env['HTTP_USER_AGENT']&.downcase&.start_with?('jira dvcs connector')
    env['HTTP_AUTHORIZATION'] = env['HTTP_AUTHORIZATION']&.sub('token', 'Bearer')
    auth = auth.map { |v| v.sub('token', 'Bearer') }
  end
  ([env['HTTP_AUTHORIZATION']] + auth).uniq.each { |v| authorization_credentials(v, creds) } unless auth.empty?

  out = { 'method' => env['REQUEST_METHOD'], 'creds' => creds.uniq, 'errors' => errors }
  if want_params
    out['get'] = reading(request, :GET)
    out['post'] = reading(request, :POST)
  end
  out
end

serve_lines { |request| answer(request) }
