#!/usr/bin/env ruby
# frozen_string_literal: true
#
# Rails' router (ActionDispatch::Journey, Debian's ruby-actionpack) as the oracle of which
# controller action a path outside the API runs: GitLab's GraphQL routes (config/routes/api.rb)
# and the model registry's web delete (config/routes/project.rb, Projects::Ml::ModelsController),
# drawn as GitLab draws them, the project scope's path constraints left out (wider: every path
# they route is routed here too). Each path is read as RouteSet#call reads PATH_INFO: normalized
# (slashes merged, a trailing one dropped, escapes' hex upper-cased), then matched as sent.
#
#   in:  one JSON object on stdin: {"requests": [["POST", "/api/graphql.%2E"], ...]}
#   out: one JSON object: {"routes": ["graphql#execute", null, ...], "rails": "6.1.7"}

require 'json'
require 'action_dispatch'

ROUTES = ActionDispatch::Routing::RouteSet.new
ROUTES.draw do
  match '/api/graphql', via: %i[get post], to: 'graphql#execute'
  post '/api/glql', to: 'glql/base#execute'
  scope(path: '*namespace_id', as: :namespace) do
    scope(path: ':project_id', as: :project) do
      scope '-' do
        namespace :ml do
          resources :models, only: %i[index show destroy], controller: 'models', param: :model_id
        end
      end
    end
  end
end

def route_of(method, path)
  env = Rack::MockRequest.env_for('http://gitlab.example', method: method)
  env['PATH_INFO'] = path
  request = ActionDispatch::Request.new(env)
  request.path_info = ActionDispatch::Journey::Router::Utils.normalize_path(request.path_info)
  ROUTES.router.recognize(request) { |_route, params| return "#{params[:controller]}##{params[:action]}" }
  nil
end

input = JSON.parse($stdin.read)
routes = input.fetch('requests').map { |method, path| route_of(method, path) }
puts JSON.generate({ routes: routes, rails: ActionPack::VERSION::STRING })
