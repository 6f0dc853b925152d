// GitLab's request stack as far as its upload middleware reaches: Rails' router mounting a Grape
// API behind Rack::MethodOverride and ApolloUploadServer::Middleware (Debian's ruby-grape,
// ruby-actionpack and ruby-apollo-upload-server), as GitLab's Rails runs them. A test mounts one
// GET route and reads what the route's answer expression sees for each request it sends.

import { spawnSync } from 'node:child_process'

/** Why the stack cannot run here, naming the packages to install, or null. */
export function apolloUnavailable (): string | null {
  const probe = spawnSync('ruby', ['-e', 'require "rails"; require "grape"; require "apollo_upload_server/middleware"'], { encoding: 'utf8' })
  if (probe.error !== undefined) return `ruby is not installed (${probe.error.message}); install the Debian packages ruby, ruby-grape and ruby-apollo-upload-server`
  if (probe.status !== 0) return `ruby cannot load Rails, Grape and apollo_upload_server (${probe.stderr.trim().split('\n')[0] ?? ''}); install the Debian packages ruby-grape and ruby-apollo-upload-server`
  return null
}

/** A GET request to the stack: its target, its Content-Type (null: none) and its body. */
export type StackRequest = readonly [target: string, contentType: string | null, body: string]

/**
 * Each request's answer from a stack whose only route is `get(<route>)` answering `answer`, a
 * Ruby expression over `env` and `params` (GitLab's token finders read
 * `ActionDispatch::Request.new(env.dup)`). Throws when Ruby fails.
 */
export function askApolloStack (route: string, answer: string, requests: readonly StackRequest[]): unknown[] {
  const script = `
    require 'rails'; require 'action_dispatch'; require 'grape'; require 'rack/mock'; require 'json'
    require 'apollo_upload_server/middleware'
    class Api < Grape::API
      format :json
      get(${route}) do
        ${answer}
      end
    end
    routes = ActionDispatch::Routing::RouteSet.new
    routes.draw { mount Api => '/' }
    gitlab = Rack::Builder.new { use Rack::MethodOverride; use ApolloUploadServer::Middleware; run routes }
    requests = JSON.parse($stdin.read)
    puts JSON.generate(requests.map { |(target, content_type, body)|
      env = Rack::MockRequest.env_for(target, method: 'GET', input: body)
      content_type.nil? ? env.delete('CONTENT_TYPE') : env['CONTENT_TYPE'] = content_type
      JSON.parse(gitlab.call(env)[2].join)
    })`
  const run = spawnSync('ruby', ['-e', script], { input: JSON.stringify(requests), encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`ruby failed: ${run.stderr}`)
  return JSON.parse(run.stdout) as unknown[]
}
