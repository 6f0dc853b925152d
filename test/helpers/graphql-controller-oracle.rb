#!/usr/bin/env ruby
# frozen_string_literal: true
#
# What GitLab's GraphqlController runs for a request, read by the Ruby libraries GitLab reads it
# with, in the order of its middleware: Rack::MethodOverride (Rails' default stack), which reads
# every POST's body with Rack's own #POST (a body without a Content-Type as a form), then Apollo's
# upload middleware (apollo_upload_server, appended by its Railtie), then ActionDispatch's
# parameters (URL over body, JSON for GitLab's two JSON types; a form only with a form type,
# unless the override already read the body, which it then keeps), then the controller's own
# reading (app/controllers/graphql_controller.rb): a batch
# when `_json` is an array, `permit` of its operations' query, operationName and variables; a
# single query's `permit`ted query and operationName and its raw variables. Also the access token
# GitLab's finders take first: `private_token`, PRIVATE-TOKEN, `access_token`, Bearer,
# `bearer_token` (lib/gitlab/auth/auth_finders.rb, Doorkeeper's access_token_methods), then the
# password of Basic under any user name, `gitlab-ci-token` included (GraphQL reads no job token).
#
#   in:  one JSON object a line: {"m": "POST", "t": "/api/graphql?...", "h": [["name", "value"], ...], "b": "<base64>"}
#   out: one JSON object a line: {"batch": bool, "ops": [{"query", "operationName", "variables"}], "token": ...} or {"error": "..."}

require 'json'
require 'base64'
require 'stringio'
require 'action_dispatch'
require 'action_controller'
require 'apollo_upload_server/middleware'

ActionController::Parameters.action_on_unpermitted_parameters = false
# config/initializers/mime_types.rb
Mime::Type.unregister :json
Mime::Type.register 'application/json', :json, ['application/vnd.git-lfs+json', 'application/json']

def plain(value)
  case value
  when ActionController::Parameters then plain(value.to_unsafe_h)
  when Hash then value.to_h { |k, v| [k.to_s, plain(v)] }
  when Array then value.map { |v| plain(v) }
  when String, Integer, Float, TrueClass, FalseClass, NilClass then value
  else { '__class' => value.class.name }
  end
end

controller = lambda do |env|
  request = ActionDispatch::Request.new(env)
  # Routing resets the parameters the middleware read (path_parameters=).
  request.path_parameters = {}
  out = {}
  begin
    params = ActionController::Parameters.new(request.parameters)
    if params[:_json].is_a?(Array)
      permitted = params.permit(:remove_deprecated, _json: [:query, :operationName, { variables: {} }])
      out['batch'] = true
      out['ops'] = permitted[:_json].map { |q| { 'query' => plain(q[:query]), 'operationName' => plain(q[:operationName]), 'variables' => plain(q[:variables]) } }
    else
      permitted = params.permit(:query, :operationName, :remove_deprecated, variables: {})
      out['batch'] = false
      out['ops'] = [{ 'query' => permitted.fetch(:query, '').to_s, 'operationName' => plain(permitted[:operationName]), 'variables' => plain(params[:variables]) }]
    end
    given = request.params
    token = given['private_token'].presence || env['HTTP_PRIVATE_TOKEN'].presence
    unless token
      token = given['access_token'].presence
      authorization = request.authorization
      token ||= authorization.gsub(/^Bearer /i, '') if authorization&.match?(/^Bearer /i)
      token ||= given['bearer_token'].presence
    end
    # Then a personal access token as the password of HTTP Basic, under any user name
    # (/api/graphql is an API request): find_user_from_personal_access_token_for_api_or_git.
    if !token && ActionController::HttpAuthentication::Basic.has_basic_credentials?(request)
      token = ActionController::HttpAuthentication::Basic.user_name_and_password(request)[1].presence
    end
    out['token'] = token&.to_s
  rescue StandardError => e
    out = { 'error' => "#{e.class}: #{e.message[0, 200]}" }
  end
  [200, {}, [JSON.generate(out)]]
end
app = ApolloUploadServer::Middleware.new(controller)
# `--without-method-override`: the stack without Rack::MethodOverride, which alone reads an
# untyped POST body (ActionDispatch's form_data? wants a form type): what GitLab would run were
# the middleware ever dropped.
app = Rack::MethodOverride.new(app) unless ARGV.include?('--without-method-override')

$stdout.sync = true
$stdin.each_line do |line|
  req = JSON.parse(line)
  env = Rack::MockRequest.env_for('http://gitlab.example/', method: req['m'], input: Base64.decode64(req['b']))
  env.delete('CONTENT_TYPE')
  path, query = req['t'].split('?', 2)
  env['PATH_INFO'] = path
  env['QUERY_STRING'] = query || ''
  req['h'].each do |name, value|
    key = name.upcase.tr('-', '_')
    env[key == 'CONTENT_TYPE' ? key : "HTTP_#{key}"] = value
  end
  begin
    puts app.call(env)[2].join
  rescue StandardError => e
    puts JSON.generate({ 'error' => "#{e.class}: #{e.message[0, 200]}" })
  end
end
