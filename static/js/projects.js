// Projects: the list and a form for a new one.
import { get, post } from "./api.js";
import { $, applyRole, clear, el, guarded, words } from "./util.js";
import { t } from "./i18n.js";

async function load() {
  await guarded(async () => {
    const { projects } = await get("/api/projects");
    const body = $("#projects");
    clear(body);
    for (const project of projects) {
      const href = `/projects/${encodeURIComponent(project.name)}`;
      body.append(el("tr", null,
        el("td", { class: "nowrap" }, el("a", { href, class: "ellipsis", title: project.name },
          project.name)),
        el("td", { class: "nowrap" }, project.environment),
        el("td", { class: "mono" }, el("span", { class: "ellipsis wide", title: project.repo_url },
          project.repo_url)),
        el("td", { class: "mono" }, el("span", { class: "ellipsis", title: project.deploy_path },
          project.deploy_path)),
        el("td", null, (project.groups || []).join(" ")),
        el("td", { class: "actions" }, el("a", { class: "button small deployer-only",
          href: `${href}/release` }, t("Start release")))));
    }
    if (!projects.length) body.append(el("tr", null, el("td", { colspan: 6, class: "muted" },
      t("none"))));
    applyRole();
  });
}

$("#project-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  guarded(async () => {
    const body = {
      name: form.name.value.trim(),
      environment: form.environment.value.trim() || "production",
      repo_url: form.repo_url.value.trim(),
      deploy_path: form.deploy_path.value.trim(),
      groups: words(form.groups.value),
      description: form.description.value,
    };
    const project = await post("/api/projects", body);
    location.assign(`/projects/${encodeURIComponent(project.name)}`);
  });
});

applyRole();
load();
