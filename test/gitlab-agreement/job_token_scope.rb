# frozen_string_literal: true
#
# GitLab's job token decision, transliterated from its Ruby source for the differential test
# (job-token-scope.test.ts): one world per line on stdin, GitLab's answer for it on stdout (the
# line protocol of ../helpers/line_oracle.rb). The models are plain objects in place of
# ActiveRecord; the logic keeps GitLab's names and order, from these files (gitlab-org/gitlab,
# 17.x-18.x as read):
#
# - app/models/ci/job_token/scope.rb: accessible?, policies_allowed?, inbound_accessible?,
#   outbound_accessible?, policies_allowed_for_accessed_project?, nearest_scope
# - app/models/ci/job_token/allowlist.rb: includes_project?, includes_group?,
#   nearest_scope_for_target_project, group_links_for_target (array_position over
#   target_project.parent_groups, nearest group first)
# - app/models/concerns/ci/job_token/expanded_job_token_policies.rb: admin_X adds read_X
# - app/models/project.rb, project_ci_cd_setting.rb: ci_inbound_job_token_scope_enabled? (the
#   project's setting or the instance's enforce_ci_inbound_job_token_scope_enabled; no CI/CD
#   settings reads as on)
# - lib/api/helpers.rb: find_project!, authorized_project_scope?, handle_job_token_failure!,
#   authorize_job_token_policies!, job_token_policies_authorized?, publicly_accessible_feature?,
#   job_token_policies_unauthorized_message
# - app/policies/project_policy.rb: the conditions and rules below, for the abilities a
#   job-token request meets (read_project, then the endpoint's own)
#
# The job's user is given a role in the accessed project (`role`); the gate knows none, so the
# test asks with the highest, owner: what GitLab lets some user do. Each route is reduced to the
# project abilities its handler checks (job artifacts: read_build, then read_job_artifacts on the
# build it finds, by that build's `artifacts:access`; one release by its tag: read_release and
# read_code; the release list: read_release, and read_code, by which its entity renders each
# release's commit, sources and evidences; environments: read_environment, and read_cluster_agent,
# by which its entity renders an environment's cluster agent; a package's file list: read_package,
# and read_pipeline, by which its entity renders each file's pipelines); issue reads, which GitLab
# filters through IssuesFinder without one, are taken as read_issue, the gate refusing them
# (docs/gitlab-rules.md, "Where the gate differs from GitLab").

require_relative '../helpers/line_oracle'

module Gitlab
  # app/models/project_feature.rb
  module ProjectFeature
    DISABLED = 0
    PRIVATE = 10
    ENABLED = 20
    PUBLIC = 30
    LEVELS = { 'disabled' => DISABLED, 'private' => PRIVATE, 'enabled' => ENABLED, 'public' => PUBLIC }.freeze
    # ProjectFeature.required_minimum_access_level: REPORTER for these, GUEST for the rest
    REPORTER_FEATURES = %w[builds merge_requests repository environments container_registry package_registry].freeze
  end

  ACCESS = { 'none' => 0, 'guest' => 10, 'planner' => 15, 'reporter' => 20, 'developer' => 30, 'maintainer' => 40, 'owner' => 50 }.freeze

  Link = Struct.new(:target_id, :default_permissions, :job_token_policies, keyword_init: true) do
    # ExpandedJobTokenPolicies#expanded_job_token_policies
    def expanded_job_token_policies
      job_token_policies.flat_map do |policy|
        if policy.start_with?('admin')
          [policy.to_sym, policy.sub('admin', 'read').to_sym]
        else
          policy.to_sym
        end
      end
    end

    def default_permissions?
      default_permissions
    end
  end

  class Project
    attr_reader :id, :path, :parent_group_ids, :visibility, :features, :public_builds, :artifacts_access,
                :project_links, :group_links, :job_token_policies_enabled, :outbound_enabled, :outbound_ids

    def initialize(doc, instance)
      @id = doc.fetch('id')
      @path = doc['path'] || "project-#{@id}"
      @parent_group_ids = doc['parent_group_ids'] || [] # nearest first, as parent_groups.pluck(:id)
      @visibility = doc['visibility'] || 'private'
      @features = doc['features'] || {}
      @public_builds = doc['public_builds'] || false
      # The `artifacts:access` of the build a job artifacts route finds (`all`: `artifacts:public`)
      @artifacts_access = doc['artifacts_access'] || 'all'
      @inbound_setting = doc['inbound_enabled'] # nil: no ci_cd_settings row
      @project_links = (doc['project_links'] || []).map { |l| link(l) }
      @group_links = (doc['group_links'] || []).map { |l| link(l) }
      @job_token_policies_enabled = doc.fetch('job_token_policies_enabled', true)
      @outbound_enabled = doc['outbound_enabled'] || false
      @outbound_ids = doc['outbound_ids'] || []
      @instance = instance
    end

    def public? = visibility == 'public'
    def internal? = visibility == 'internal'
    def private? = visibility == 'private'

    # Project#ci_inbound_job_token_scope_enabled? with ProjectCiCdSetting#inbound_job_token_scope_enabled?
    def ci_inbound_job_token_scope_enabled?
      return true if @inbound_setting.nil?
      return true if @instance['enforce_inbound']

      @inbound_setting
    end

    def ci_outbound_job_token_scope_enabled? = outbound_enabled

    # Older versions (17.11 to 18.4): the root namespace's job_token_policies_enabled
    def job_token_policies_enabled? = job_token_policies_enabled

    def access_level(feature)
      ProjectFeature::LEVELS.fetch(features.fetch(feature, 'disabled'))
    end

    private

    def link(doc)
      Link.new(target_id: doc.fetch('target_id'), default_permissions: doc.fetch('default_permissions'),
        job_token_policies: doc.fetch('job_token_policies'))
    end
  end

  # Ci::JobToken::Allowlist, inbound direction, of `source_project` (the accessed project)
  class Allowlist
    def initialize(source_project)
      @source_project = source_project
    end

    def includes_project?(target_project)
      @source_project.project_links.any? { |l| l.target_id == target_project.id }
    end

    def includes_group?(target_project)
      group_links_for_target(target_project).any?
    end

    def nearest_scope_for_target_project(target_project)
      @source_project.project_links.find { |l| l.target_id == target_project.id } ||
        group_links_for_target(target_project).first
    end

    private

    # where(target_group_id: ids).order(array_position(ARRAY[ids], target_group_id))
    def group_links_for_target(target_project)
      target_group_ids = target_project.parent_group_ids
      @source_project.group_links
        .select { |l| target_group_ids.include?(l.target_id) }
        .sort_by { |l| target_group_ids.index(l.target_id) }
    end
  end

  # Ci::JobToken::Scope of `current_project` (the job's project)
  class Scope
    attr_reader :current_project

    def initialize(current_project)
      @current_project = current_project
    end

    def accessible?(accessed_project)
      return true if self_referential?(accessed_project)

      outbound_accessible?(accessed_project) && inbound_accessible?(accessed_project)
    end

    def policies_allowed?(accessed_project, policies, older:)
      return true if self_referential?(accessed_project)
      return true if older && !accessed_project.job_token_policies_enabled?
      return true unless accessed_project.ci_inbound_job_token_scope_enabled? # allowlists are disabled
      return false unless inbound_accessible?(accessed_project) # the current project is not allowlisted

      policies_allowed_for_accessed_project?(accessed_project, policies)
    end

    def self_referential?(accessed_project)
      current_project.id == accessed_project.id
    end

    private

    def outbound_accessible?(accessed_project)
      return true unless current_project.ci_outbound_job_token_scope_enabled?
      return true unless accessed_project.private?

      current_project.outbound_ids.include?(accessed_project.id)
    end

    def inbound_accessible?(accessed_project)
      return true unless accessed_project.ci_inbound_job_token_scope_enabled?

      Allowlist.new(accessed_project).includes_project?(current_project) ||
        Allowlist.new(accessed_project).includes_group?(current_project)
    end

    def policies_allowed_for_accessed_project?(accessed_project, policies)
      scope = Allowlist.new(accessed_project).nearest_scope_for_target_project(current_project)
      return true if scope.default_permissions?
      return false if policies.empty?

      (policies - scope.expanded_job_token_policies).empty?
    end
  end

  # The part of ProjectPolicy a job-token user meets. DeclarativePolicy: an ability is held when a
  # rule enables it and no rule prevents it; `can?(:x)` inside a rule is that same answer.
  class ProjectPolicy
    def initialize(user, project)
      @user = user
      @project = project
      @cache = {}
    end

    def can?(ability)
      @cache.fetch(ability) do
        @cache[ability] = false # a rule that asks for its own ability sees it unheld
        @cache[ability] = enabled?(ability) && !prevented?(ability)
      end
    end

    private

    def team_access_level = ACCESS.fetch(@user[:role])
    def guest = team_access_level >= ACCESS['guest']
    def reporter = team_access_level >= ACCESS['reporter']
    def developer = team_access_level >= ACCESS['developer']
    def maintainer = team_access_level >= ACCESS['maintainer']
    def owner = team_access_level >= ACCESS['owner']
    def public_project = @project.public?
    def internal_access = @project.internal? && !@user[:external]
    def public_or_internal = @project.public? || @project.internal?
    def project_allowed_for_job_token_by_scope = @user[:scope].accessible?(@project)
    def project_allowed_for_job_token = public_project || internal_access || project_allowed_for_job_token_by_scope
    def public_builds = @project.public_builds

    def access_allowed_to?(feature)
      case @project.access_level(feature)
      when ProjectFeature::DISABLED then false
      when ProjectFeature::PRIVATE
        minimum = ProjectFeature::REPORTER_FEATURES.include?(feature) ? ACCESS['reporter'] : ACCESS['guest']
        team_access_level >= minimum
      else true
      end
    end

    def job_token_access_allowed_to?(feature)
      case @project.access_level(feature)
      when ProjectFeature::DISABLED then false
      when ProjectFeature::PRIVATE then @user[:scope].accessible?(@project)
      else true
      end
    end

    def disabled?(feature) = !access_allowed_to?(feature)
    def packages_disabled = @project.access_level('package_registry') == ProjectFeature::DISABLED

    ROLE_ACCESS = %i[guest_access planner_access reporter_access developer_access maintainer_access owner_access].freeze
    GUEST = %i[read_project read_issue read_release].freeze
    REPORTER = %i[read_commit_status read_build read_container_image read_pipeline read_environment read_deployment
                  read_merge_request read_package download_code read_issue].freeze
    DEVELOPER = %i[create_package create_deployment update_environment create_release read_terraform_state
                   read_secure_files update_build read_cluster_agent].freeze
    MAINTAINER = %i[admin_package destroy_package admin_terraform_state admin_secure_files admin_pipeline admin_environment
                    admin_deployment destroy_release].freeze
    PUBLIC = %i[read_package read_project read_merge_request read_pipeline read_environment read_deployment
                read_commit_status read_container_image download_code read_release read_issue].freeze

    def enabled?(ability)
      case ability
      when :guest_access then guest || can?(:public_user_access) || can?(:owner_access)
      when :reporter_access then reporter || can?(:owner_access)
      when :developer_access then developer || can?(:owner_access)
      when :maintainer_access then maintainer || can?(:owner_access)
      when :owner_access then owner
      when :public_user_access then public_project || internal_access
      when :public_access then public_project || can?(:public_user_access)
      else
        (GUEST.include?(ability) && can?(:guest_access)) ||
          (REPORTER.include?(ability) && can?(:reporter_access)) ||
          (DEVELOPER.include?(ability) && can?(:developer_access)) ||
          (MAINTAINER.include?(ability) && can?(:maintainer_access)) ||
          (PUBLIC.include?(ability) && can?(:public_access)) ||
          (ability == :read_build && public_builds) ||
          (ability == :read_code && can?(:download_code)) || # rule { can?(:download_code) }.enable :read_code
          (ability == :read_job_artifacts && can?(:read_build) && @project.artifacts_access != 'none') ||
          job_token_enabled?(ability)
      end
    end

    # rule { public_or_internal & job_token_<feature> }
    def job_token_enabled?(ability)
      return false unless public_or_internal

      case ability
      when :read_container_image then job_token_access_allowed_to?('container_registry')
      when :read_package, :read_project then job_token_access_allowed_to?('package_registry')
      when :read_commit_status then job_token_access_allowed_to?('builds')
      when :read_release then job_token_access_allowed_to?('releases')
      when :read_environment then job_token_access_allowed_to?('environments')
      else false
      end
    end

    def prevented?(ability)
      # rule { ~project_allowed_for_job_token }.prevent_all
      return true unless project_allowed_for_job_token
      # rule { public_or_internal & ~project_allowed_for_job_token_by_scope }
      return true if ROLE_ACCESS.include?(ability) && public_or_internal && !project_allowed_for_job_token_by_scope
      return true if ability == :public_access && public_or_internal && !project_allowed_for_job_token_by_scope
      return true if ability == :public_user_access && public_project && !project_allowed_for_job_token_by_scope

      feature_prevented?(ability)
    end

    def feature_prevented?(ability)
      case ability
      # Ci::BuildPolicy (read_build delegated to the project): rule { ~artifacts_public &
      # ~project_developer }, and newer GitLab's maintainer-only artifacts
      when :read_job_artifacts
        case @project.artifacts_access
        when 'all' then false
        when 'maintainer' then !can?(:maintainer_access)
        else !can?(:developer_access)
        end
      when :read_environment, :read_deployment, :update_environment, :create_deployment, :admin_environment, :admin_deployment
        disabled?('environments') || disabled?('builds') || disabled?('repository')
      when :read_release, :create_release, :destroy_release then disabled?('releases')
      when :read_package, :create_package, :admin_package, :destroy_package then packages_disabled
      when :read_build, :update_build then disabled?('builds') || disabled?('repository')
      when :read_pipeline, :read_commit_status, :admin_pipeline then disabled?('builds') || disabled?('repository')
      when :download_code then disabled?('repository')
      when :read_container_image then disabled?('container_registry')
      when :read_issue then disabled?('issues')
      when :read_merge_request then disabled?('merge_requests') || disabled?('repository')
      else false
      end
    end
  end

  # lib/api/helpers.rb for one job-token request to a project route: what find_project! and the
  # endpoint answer. `route` holds the route settings (job_token_policies, skip_job_token_policies,
  # allow_public_access_for_enabled_project_features, job_token_scope) and the ability its
  # handler authorizes.
  class Request
    def initialize(world)
      @instance = world.fetch('instance')
      @older = world.fetch('older', false)
      @route = world.fetch('route')
      @accessed = Project.new(world.fetch('accessed'), @instance)
      job_project = world.fetch('job_project')
      @job_project = job_project['id'] == @accessed.id ? @accessed : Project.new(job_project, @instance)
      @user = { role: world.fetch('role'), external: world.fetch('external', false), scope: Scope.new(@job_project) }
    end

    def answer
      project = @accessed
      unless authorized_project_scope?(project)
        return deny('scope', "This project's CI/CD job token cannot be used to authenticate with the container registry of a different project.")
      end
      return handle_job_token_failure!(project) unless can?(:read_project, project)
      return deny('policies', job_token_policies_unauthorized_message(project)) unless job_token_policies_authorized?(project)
      return deny('ability', 'endpoint') unless Array(@route.fetch('ability')).all? { |ability| can?(ability.to_sym, project) }

      { 'allow' => true }
    end

    private

    def can?(ability, project)
      ProjectPolicy.new(@user, project).can?(ability)
    end

    def deny(stage, message)
      { 'allow' => false, 'stage' => stage, 'message' => message }
    end

    def authorized_project_scope?(project)
      return true unless @route['job_token_scope'] == 'project'

      @job_project == project
    end

    def handle_job_token_failure!(project)
      deny('read_project', format('Authentication by CI/CD job token not allowed from %<source>s to %<target>s.',
        source: @user[:scope].current_project.path, target: project.path))
    end

    def job_token_policies_authorized?(project)
      return true if skip_job_token_policies?
      return true if publicly_accessible_feature?(project)

      @user[:scope].policies_allowed?(project, job_token_policies, older: @older)
    end

    def publicly_accessible_feature?(project)
      return false unless project.public? || project.internal?

      project_features = Array(@route['allow_public_access_for_enabled_project_features'])
      return false if project_features.empty?

      project_features.all? { |feature| project.access_level(feature) >= ProjectFeature::ENABLED }
    end

    def job_token_policies_unauthorized_message(project)
      policies = job_token_policies
      case policies.size
      when 0
        'This action is unauthorized for CI/CD job tokens.'
      when 1
        format('Insufficient permissions to access this resource in project %<project>s. ' \
               'The following token permission is required: %<policy>s.', project: project.path, policy: policies[0])
      else
        format('Insufficient permissions to access this resource in project %<project>s. ' \
               'The following token permissions are required: %<policies>s.', project: project.path,
          policies: to_sentence(policies.map(&:to_s)))
      end
    end

    def job_token_policies
      Array(@route['job_token_policies']).map(&:to_sym)
    end

    def skip_job_token_policies?
      @route.fetch('skip_job_token_policies', false)
    end

    # Array#to_sentence, English
    def to_sentence(words)
      return words.join(' and ') if words.size <= 2

      "#{words[0..-2].join(', ')}, and #{words[-1]}"
    end
  end
end

serve_lines { |world| Gitlab::Request.new(world).answer } if $PROGRAM_NAME == __FILE__
